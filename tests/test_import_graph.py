"""The code's layering, read from its own imports (no bpy needed): the UI (operators/,
panels/) -> add-on logic (wan_animate_blender/) -> its bpy-free core -> the protocol.
Imports inside functions count too: a lazy import still ties two modules together."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDON = ["__init__.py", "operators", "panels", "wan_animate_blender"]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    # The root's own __init__ (the extension package) has no name of its own here.
    return ".".join(parts) or "__init__"


def _files(root: Path, package_dirs: list[str]) -> list[Path]:
    out: list[Path] = []
    for entry in package_dirs:
        p = root / entry
        out.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    return out


def import_graph(root: Path, package_dirs: list[str]) -> dict[str, set[str]]:
    """Module -> the modules it imports, as dotted names relative to ``root`` (relative
    imports resolved; ``from pkg import mod`` names the submodule when it is a file of
    the graph). Every .py file under ``package_dirs`` (folders or files) is a node."""
    files = _files(root, package_dirs)
    names = {path: _module_name(root, path) for path in files}
    known = set(names.values())
    graph: dict[str, set[str]] = {}
    for path, name in names.items():
        # A package's __init__ is its own package; a module's package is its parent.
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        if name == "__init__":
            package = ""
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".") if package else []
                    up = node.level - 1
                    assert up <= len(parts), f"{path}: a relative import above {root}"
                    base = parts[: len(parts) - up]
                    stem = ".".join([*base, node.module] if node.module else base)
                else:
                    stem = node.module or ""
                for alias in node.names:
                    sub = f"{stem}.{alias.name}" if stem else alias.name
                    targets.add(sub if sub in known else stem)
        targets.discard("")
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the graph's own modules (first module repeated at the
    end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def addon_graph() -> dict[str, set[str]]:
    return import_graph(ROOT, ADDON)


def test_the_addon_has_no_import_cycle():
    graph = addon_graph()
    assert "operators.generate" in graph and "wan_animate_blender.core.client" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_ui_packages_do_not_import_each_other_in_a_cycle():
    layers = ("operators", "panels", "wan_animate_blender")
    between: dict[str, set[str]] = {layer: set() for layer in layers}
    for mod, targets in addon_graph().items():
        for layer in layers:
            if _under(mod, layer):
                between[layer] |= {t.split(".")[0] for t in targets if t.split(".")[0] in layers} - {layer}
    assert find_cycle(between) is None, between


def test_the_logic_never_imports_the_ui():
    bad = {
        (mod, t)
        for mod, targets in addon_graph().items()
        if _under(mod, "wan_animate_blender")
        for t in targets
        if _under(t, "operators") or _under(t, "panels")
    }
    assert not bad


def test_the_core_imports_no_bpy_and_nothing_of_the_blender_side():
    bad = {
        (mod, t)
        for mod, targets in addon_graph().items()
        if _under(mod, "wan_animate_blender.core")
        for t in targets
        if t.split(".")[0] in ("bpy", "bpy_extras", "mathutils", "bmesh")
        or _under(t, "wan_animate_blender.blender")
        or _under(t, "wan_animate_blender.api")
    }
    assert not bad


def test_the_ui_leaves_the_protocol_to_the_logic():
    bad = {
        (mod, t)
        for mod, targets in addon_graph().items()
        if _under(mod, "operators") or _under(mod, "panels")
        for t in targets
        if _under(t, "backend")
    }
    assert not bad


def test_the_graph_sees_a_cycle_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (pkg / "c.py").write_text("import os\nfrom .sub.b import f\n")
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.a"}
    assert graph["pkg.c"] == {"os", "pkg.sub.b"}
    assert find_cycle(graph) in (["pkg.a", "pkg.sub.b", "pkg.a"], ["pkg.sub.b", "pkg.a", "pkg.sub.b"])
    del graph["pkg.sub.b"]
    assert find_cycle(graph) is None
