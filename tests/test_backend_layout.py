"""The backend's shape, checked from its own source: one stage per folder, imports that
flow one way (service -> job -> engines -> generation / preprocess -> model -> protocol, with
env beside the flow using model), no cycle, a stdlib-only protocol, and functions that read
in one screen."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from test_import_graph import addon_graph, find_cycle, import_graph

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
# Which stage may import which (besides itself and the protocol every stage may use).
MAY_IMPORT = {
    "service": {"job", "engines", "model", "preprocess", "generation", "env"},
    "job": {"engines", "preprocess", "generation"},
    "engines": {"model", "generation"},
    "generation": set(),
    "preprocess": set(),
    "model": set(),
    "env": {"model"},
}
MAX_FUNCTION_LINES = 80


def backend_graph() -> dict[str, set[str]]:
    graph = import_graph(ROOT, ["backend"])
    return {m: {t for t in deps if t.startswith("backend.") or t == "backend"} for m, deps in graph.items()}


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
    graph = import_graph(ROOT, ["backend/protocol"])
    assert "backend.protocol" in graph and len(graph) > 1, sorted(graph)
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    outside = {
        (module, dep)
        for module, deps in graph.items()
        for dep in deps
        if dep.split(".")[0] not in stdlib and dep not in graph
    }
    assert not outside, outside
    used = {t for targets in addon_graph().values() for t in targets if t.split(".")[0] == "backend"}
    assert used and all(t == "backend.protocol" or t.startswith("backend.protocol.") for t in used), used


def function_lengths() -> dict[str, int]:
    """Every function and method in backend/, as ``folder/file.py:name`` -> lines."""
    lengths: dict[str, int] = {}
    for path in sorted(BACKEND.rglob("*.py")):
        where = path.relative_to(BACKEND).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = f"{where}:{node.name}"
                lengths[key] = max(lengths.get(key, 0), node.end_lineno - node.lineno + 1)
    return lengths


def test_every_backend_function_reads_in_one_screen():
    lengths = function_lengths()
    long = {k: n for k, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert not long, f"split these into named steps: {long}"
