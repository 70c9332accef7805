"""The backend's shape, checked from its own source: one stage per folder, imports that
flow one way (service -> job -> engines -> generation / preprocess -> model -> protocol),
no cycle, a stdlib-only protocol, and a job flow whose functions read in one screen."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
# Which stage may import which (besides itself and the protocol every stage may use).
MAY_IMPORT = {
    "service": {"job", "engines", "model", "preprocess", "generation", "env"},
    "job": {"engines", "preprocess", "generation"},
    "engines": {"model", "generation"},
    "generation": set(),
    "preprocess": set(),
    "model": {"env"},
    "env": {"model"},
}
JOB_FLOW_MAX_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``path`` imports, at any depth of its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def backend_graph() -> dict[str, set[str]]:
    files = sorted(BACKEND.rglob("*.py"))
    known = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, known) for f in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None


def test_backend_has_no_import_cycle():
    assert find_cycle(backend_graph()) is None, find_cycle(backend_graph())


def test_backend_stages_import_one_way():
    wrong = []
    for module, deps in backend_graph().items():
        here = stage(module)
        if here is None:
            continue
        for dep in deps:
            there = stage(dep)
            if there not in (None, here) and there not in MAY_IMPORT[here]:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, wrong


def test_protocol_is_stdlib_only_and_the_only_backend_module_the_addon_imports():
    tree = ast.parse((BACKEND / "protocol.py").read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    import sys

    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    addon = [ROOT / "__init__.py", *sorted((ROOT / "operators").rglob("*.py"))]
    addon += sorted((ROOT / "panels").rglob("*.py")) + sorted((ROOT / "wan_animate_blender").rglob("*.py"))
    known = {module_name(f) for f in BACKEND.rglob("*.py")}
    used = {dep for f in addon for dep in imports_of(f, known | {"backend"})}
    assert used <= {"backend.protocol"}, used


def test_job_flow_functions_read_in_one_screen():
    long = []
    for path in sorted((BACKEND / "job").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > JOB_FLOW_MAX_LINES:
                    long.append(f"{path.name}:{node.name} ({n} lines)")
    assert not long, long
