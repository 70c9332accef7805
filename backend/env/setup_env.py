"""``python -m backend setup``: create the backend's own Python environment.

Stdlib only, runs with any Python 3.11 (never Blender's). Prints one
``[k/n] stage`` line per step so the add-on can show progress from the log."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

from ..protocol import venv_python

TORCH_VERSION = "2.13.0"
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"  # backend/requirements.txt
ORT_VERSION = "1.32.0"  # as pinned in requirements.txt
# PyPI's Windows torch wheels are CPU-only; CUDA builds come from PyTorch's own index.
WINDOWS_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"


def has_nvidia_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def torch_install_args(accel: str) -> list[str]:
    args = [f"torch=={TORCH_VERSION}"]
    if accel == "cuda" and sys.platform == "win32":
        args += ["--index-url", WINDOWS_CUDA_INDEX]
    return args


def run_step(k: int, n: int, title: str, cmd: list[str]) -> None:
    print(f"[{k}/{n}] {title}", flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise SystemExit(f"setup failed at step {k} ({title}); the log above says why")


def create_env(target: Path, accel: str = "auto", extra: list[str] | None = None) -> Path:
    target = Path(target)
    n = 4 if extra else 3
    print(f"[1/{n}] creating the environment in {target}", flush=True)
    if not venv_python(target).exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(target)
    py = str(venv_python(target))
    if accel == "auto":
        accel = "cuda" if has_nvidia_gpu() else "cpu"
    run_step(2, n, "installing torch", [py, "-m", "pip", "install", *torch_install_args(accel)])
    run_step(
        3, n, "installing the backend's requirements", [py, "-m", "pip", "install", "-r", str(REQUIREMENTS)]
    )
    if accel == "cuda":
        # The same onnxruntime release built with CUDA, for the ViTPose/YOLO preprocessing; the two
        # packages share one module folder, so the CPU build goes first.
        run_step(
            3,
            n,
            "switching onnxruntime to its CUDA build",
            [py, "-m", "pip", "uninstall", "-y", "onnxruntime"],
        )
        run_step(
            3,
            n,
            "switching onnxruntime to its CUDA build",
            [py, "-m", "pip", "install", f"onnxruntime-gpu=={ORT_VERSION}"],
        )
    if extra:
        run_step(4, n, "installing extras", [py, "-m", "pip", "install", *extra])
    print(f"done: the backend's Python is {py}", flush=True)
    return Path(py)
