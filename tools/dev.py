"""Developer entry point: set up every environment, build, test, run the demo.

    python3 tools/dev.py demo    # the main job end to end, headless, tiny model
    python3 tools/dev.py test    # the test suite (what CI runs)
    python3 tools/dev.py build   # dist/<id>-<version>.zip only, without the developer set-up

Environments live in .dev/ (ignored by git): the backend's own venv, made by the
same `python -m backend setup` an artist runs, and one venv per Blender version
holding the bpy wheel. Each is made once and reused."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ext_zip import build_zip

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / ".dev"
BLENDER_VERSIONS = {"4.2": "bpy==4.2.23", "4.5": "bpy==4.5.15", "5.0": "bpy==5.0.1"}
# onnx builds the tests' small ONNX models; 1.17 is the last release that accepts mediapipe's protobuf 4.
TEST_EXTRAS = [
    "pytest==9.2.0",
    "ruff==0.17.6",
    "scikit-image==0.26.0",
    "scikit-video==1.1.11",
    "onnx==1.17.0",
    # Fuzzes the HTTP API against its own /openapi.json.
    "schemathesis==4.32.5",
    # Cluster mode's optional pin, so tests/test_cluster.py runs on a real local Ray cluster.
    *(
        ln
        for ln in (ROOT / "backend" / "requirements-cluster.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ),
    # What the official Wan2.2 code below imports for the parts the tests compare with.
    "easydict==1.14",
    "einops==0.8.2",
]
# The official Wan2.2 code, the tests' reference for every step the backend mirrors
# (tests/test_official_*.py). Without its declared dependencies: flash_attn, decord and
# torchvision cannot run here and none of them is needed by the functions compared.
ORACLE = ["wan22==2.2.11"]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def run(cmd: list, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def install_oracle(venv: Path) -> None:
    run([venv_python(venv), "-m", "pip", "install", "-q", "--no-deps", *ORACLE])


def setup() -> dict[str, Path]:
    DEV.mkdir(exist_ok=True)
    backend = DEV / "backend"
    marker = backend / ".complete"
    # The pins the environment was made from: a changed pin installs into the existing venv.
    pins = (ROOT / "backend" / "requirements.txt").read_text() + "\n".join(TEST_EXTRAS + ORACLE)
    if marker.exists() and marker.read_text() != pins:
        run(
            [
                venv_python(backend),
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                ROOT / "backend" / "requirements.txt",
                *TEST_EXTRAS,
            ]
        )
        install_oracle(backend)
        marker.write_text(pins)
    if not marker.exists():
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        run(
            [
                sys.executable,
                "-m",
                "backend",
                "setup",
                "--venv",
                backend,
                "--accel",
                "cpu",
                "--extra",
                *TEST_EXTRAS,
            ],
            env=env,
            cwd=ROOT,
        )
        install_oracle(backend)
        marker.write_text(pins)
    pythons = {"backend": venv_python(backend)}
    for ver, spec in BLENDER_VERSIONS.items():
        venv = DEV / f"bpy{ver.replace('.', '')}"
        marker = venv / ".complete"
        if not marker.exists():
            run([sys.executable, "-m", "venv", venv])
            run([venv_python(venv), "-m", "pip", "install", "-q", spec, "requests"])
            marker.write_text("ok")
        pythons[ver] = venv_python(venv)
    return pythons


def blender_ext_cli(bpy_python: Path) -> Path:
    # find_spec, not import: importing bpy starts Blender.
    probe = "import importlib.util as u; print(list(u.find_spec('bpy').submodule_search_locations)[0])"
    site = subprocess.run(
        [str(bpy_python), "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    return next(Path(site).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))


def fresh_dist() -> Path:
    dist = ROOT / "dist"
    dist.mkdir(exist_ok=True)
    for old in dist.glob("*.zip"):
        old.unlink()
    return dist


def build(bpy_python: Path) -> Path:
    """Validate the manifest and build the installable .zip with Blender's own tool."""
    cli = blender_ext_cli(bpy_python)
    dist = fresh_dist()
    run([bpy_python, cli, "validate", ROOT])
    run([bpy_python, cli, "build", "--source-dir", ROOT, "--output-dir", dist])
    return next(dist.glob("*.zip"))


def build_light() -> Path:
    """The release zip without the developer set-up: a Blender on PATH (or $BLENDER), else
    the bpy wheel's tool when .dev has one, else the plain-Python writer (same file list)."""
    blender = os.environ.get("BLENDER") or shutil.which("blender")
    if blender:
        dist = fresh_dist()
        run([blender, "--factory-startup", "--command", "extension", "validate", ROOT])
        run(
            [
                blender,
                "--factory-startup",
                "--command",
                "extension",
                "build",
                "--source-dir",
                ROOT,
                "--output-dir",
                dist,
            ]
        )
        return next(dist.glob("*.zip"))
    for ver in reversed(BLENDER_VERSIONS):
        bpy_python = venv_python(DEV / f"bpy{ver.replace('.', '')}")
        if (bpy_python.parent.parent / ".complete").exists():
            return build(bpy_python)
    print("no Blender found (PATH or $BLENDER) and no .dev set-up: writing the zip with plain Python")
    return build_zip(ROOT, fresh_dist())


def dev_env(pythons: dict[str, Path], zip_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "WAN_DEV_BACKEND_PYTHON": str(pythons["backend"]),
            "WAN_DEV_BPY_PYTHONS": os.pathsep.join(f"{v}={pythons[v]}" for v in BLENDER_VERSIONS),
            "WAN_DEV_EXTENSION_ZIP": str(zip_path),
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
        }
    )
    return env


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("setup", "build", "test", "demo", "bench"))
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if args.cmd == "build":
        print(build_light())
        return 0
    pythons = setup()
    if args.cmd == "setup":
        return 0
    zip_path = build(pythons["5.0"])
    env = dev_env(pythons, zip_path)
    if args.cmd == "test":
        run([pythons["backend"], "-m", "ruff", "check", ROOT], cwd=ROOT)
        code = subprocess.run(
            [str(pythons["backend"]), "-m", "pytest", "-q", *args.rest], cwd=ROOT, env=env
        ).returncode
        return code
    if args.cmd == "demo":
        return subprocess.run(
            [str(pythons["backend"]), str(ROOT / "tools" / "demo.py"), *args.rest], cwd=ROOT, env=env
        ).returncode
    if args.cmd == "bench":
        code = 0
        for script in (
            "bench_job.py",
            "bench_drift.py",
            "bench_speed.py",
            "bench_preprocess.py",
            "bench_polling.py",
            "bench_cluster.py",
        ):
            code |= subprocess.run(
                [str(pythons["backend"]), str(ROOT / "benchmarks" / script), *args.rest],
                cwd=ROOT,
                env=env,
            ).returncode
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
