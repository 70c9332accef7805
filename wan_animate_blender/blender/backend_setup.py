"""Creating the backend's Python environment and downloading the weights: subprocesses
outside Blender's Python (so torch and friends never load into Blender), their lines logged
and their progress kept in SETUP_STATE and DOWNLOAD_STATE for the preferences to draw."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import bpy

from ..core.backend_process import EXTENSION_ROOT
from .folders import user_dir

# Written by the set-up thread, read by the preferences' draw(): one run at a time.
SETUP_STATE: dict[str, Any] = {"running": False, "stage": "", "steps": [], "lines": [], "returncode": None}


def find_setup_python(configured: str) -> list[str] | None:
    if configured:
        return [bpy.path.abspath(configured)]
    if sys.platform == "win32" and shutil.which("py"):
        return ["py", "-3.11"]
    for name in ("python3.11", "python3", "python"):
        if found := shutil.which(name):
            return [found]
    return None


def setup_paths() -> tuple[Path, Path]:
    """(the environment's folder, the set-up log)."""
    return user_dir("backend-env"), user_dir("logs") / "setup.log"


def run_setup(python_cmd: list[str], venv: Path, log_path: Path) -> int:
    SETUP_STATE.update(running=True, stage="Starting set-up", steps=[], lines=[], returncode=None)
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_ROOT))
    env.pop("PYTHONHOME", None)
    args = [*python_cmd, "-m", "backend", "setup", "--venv", str(venv)]
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(venv.parent)
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            line = line.rstrip()
            if line.startswith("["):
                SETUP_STATE["stage"] = line
                SETUP_STATE["steps"].append(line)
            SETUP_STATE["lines"] = (SETUP_STATE["lines"] + [line])[-50:]
        rc = proc.wait()
    SETUP_STATE.update(
        running=False,
        returncode=rc,
        stage="Backend ready" if rc == 0 else f"Set-up failed (code {rc}); log: {log_path}",
    )
    return rc


# The weights download: ``python -m backend download`` in the backend's environment, its output
# read by a thread into DOWNLOAD_STATE (drawn by the preferences), so Blender never waits on it.
DOWNLOAD_STATE: dict[str, Any] = {
    "running": False,
    "stage": "",
    "progress": None,
    "lines": [],
    "returncode": None,
    "process": None,
    "cancelled": False,
}
CHECK_STATE: dict[str, Any] = {"running": False, "ok": None, "lines": []}
WEIGHTS_ELSEWHERE = (
    "Or fetch the weights on a machine that is online ('python -m backend download --dir FOLDER' in the "
    "backend's environment), copy the folder here and set 'Model folder' to it."
)


def online_refusal() -> str | None:
    """Why the add-on may not reach the internet now, and what to do; None when it may."""
    if bpy.app.online_access:
        return None
    how = (
        "Edit > Preferences > System > Network > Allow Online Access"
        if not bpy.app.background
        else "start Blender with --online-mode"
    )
    return f"Online access is off in Blender. To download the weights turn on {how}. {WEIGHTS_ELSEWHERE}"


def download_log_path() -> Path:
    return user_dir("logs") / "download.log"


def start_download(python: Path, model_dir: Path, log_path: Path) -> subprocess.Popen:
    """Start the download and the thread that follows its output; returns at once."""
    from ..core.weights import DownloadProgress

    if not python.is_file():
        raise FileNotFoundError(
            f"The backend's Python {python} does not exist: press 'Set up backend' first, "
            "or set 'Backend Python'."
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_ROOT), PYTHONUNBUFFERED="1")
    env.pop("PYTHONHOME", None)
    args = [str(python), "-m", "backend", "download", "--dir", str(model_dir)]
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the reader thread
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(model_dir)
    )
    progress = DownloadProgress()
    DOWNLOAD_STATE.update(
        running=True,
        stage="Starting download",
        progress=progress,
        lines=[],
        returncode=None,
        process=proc,
        cancelled=False,
    )

    def follow() -> None:
        assert proc.stdout is not None
        with log:
            for line in proc.stdout:
                log.write(line)
                line = line.rstrip()
                if progress.feed(line, time.monotonic()):
                    DOWNLOAD_STATE["stage"] = "Downloading: " + progress.text()
                elif line:
                    DOWNLOAD_STATE["lines"] = (DOWNLOAD_STATE["lines"] + [line])[-20:]
            rc = proc.wait()
        if DOWNLOAD_STATE["cancelled"]:
            stage = f"Download stopped at {progress.text()}. Press Download weights to resume."
        elif rc == 0:
            stage = "Weights downloaded. Press Check to verify them."
        else:
            last = next((ln for ln in reversed(DOWNLOAD_STATE["lines"]) if ln.strip()), "")
            stage = f"Download failed (code {rc}): {last} Log: {log_path}"
        DOWNLOAD_STATE.update(running=False, returncode=rc, stage=stage, process=None)

    threading.Thread(target=follow, daemon=True).start()
    return proc


def wait_download(timeout: float | None = None) -> int | None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while DOWNLOAD_STATE["running"] and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.1)
    return DOWNLOAD_STATE["returncode"]


def cancel_download() -> bool:
    """Stop the download; huggingface_hub resumes its partial files on the next start."""
    proc = DOWNLOAD_STATE["process"]
    if proc is None or proc.poll() is not None:
        return False
    DOWNLOAD_STATE["cancelled"] = True
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    return True


def run_check(model_dir: Path, hashes: bool) -> bool:
    from ..core.weights import check_model_folder

    CHECK_STATE.update(running=True, ok=None, lines=["Checking " + str(model_dir)])
    result = check_model_folder(model_dir, hashes)
    CHECK_STATE.update(running=False, ok=result.ok, lines=result.lines)
    return result.ok
