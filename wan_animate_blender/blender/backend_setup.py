"""Creating the backend's Python environment and downloading the weights: subprocesses
outside Blender's Python (so torch and friends never load into Blender), their lines logged
and their progress kept in SETUP_STATE and DOWNLOAD_STATE for the preferences to draw."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import bpy

from ...backend.protocol import active_env_python, env_folder, env_pointer, venv_python
from ..core.backend_process import EXTENSION_ROOT
from .folders import user_dir

STEP_LINE = re.compile(r"^\[\d+/\d+\] ")  # set-up's progress lines, "[k/n] what"
# Written by the set-up thread, read by the preferences' draw(): one run at a time.
SETUP_STATE: dict[str, Any] = {"running": False, "stage": "", "steps": [], "lines": [], "returncode": None}


NO_PYTHON = (
    "No Python 3.11 found. Install it (Windows and macOS: python.org/downloads; Linux: the python3.11 "
    "and python3.11-venv packages) and set 'Python for set-up' to its python executable."
)


def _is_311(cmd: list[str]) -> bool:
    probe = "import sys; print(sys.version_info[:2] == (3, 11))"
    try:
        out = subprocess.run([*cmd, "-c", probe], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.strip() == "True"


def find_setup_python(configured: str) -> list[str] | None:
    """The Python that creates the backend's environment: the configured one (set-up itself says
    if it is not 3.11), else the first Python 3.11 found on this computer."""
    if configured:
        return [bpy.path.abspath(configured)]
    candidates: list[list[str]] = []
    if sys.platform == "win32" and shutil.which("py"):
        candidates.append(["py", "-3.11"])
    for name in ("python3.11", "python3", "python"):
        if found := shutil.which(name):
            candidates.append([found])
    return next((c for c in candidates if _is_311(c)), None)


def setup_paths() -> tuple[Path, Path]:
    """(the folder the environments are kept in, the set-up log)."""
    return user_dir("backend-env"), user_dir("logs") / "setup.log"


def run_setup(python_cmd: list[str], root: Path, log_path: Path) -> int:
    """A new environment in ``root``, self-tested, then put in use; the one in use stays on failure."""
    SETUP_STATE.update(running=True, stage="Starting set-up", steps=[], lines=[], returncode=None)
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_ROOT), PYTHONUNBUFFERED="1")
    env.pop("PYTHONHOME", None)
    args = [*python_cmd, "-m", "backend", "setup", "--root", str(root)]
    failure = ""
    root.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(root)
            )
        except OSError as exc:
            SETUP_STATE.update(running=False, returncode=-1, stage=f"Set-up could not start {args[0]}: {exc}")
            return -1
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            line = line.rstrip()
            if STEP_LINE.match(line):
                SETUP_STATE["stage"] = line
                SETUP_STATE["steps"].append(line)
            if line.startswith("setup failed: "):
                failure = line[len("setup failed: ") :]
            SETUP_STATE["lines"] = (SETUP_STATE["lines"] + [line])[-50:]
        rc = proc.wait()
    SETUP_STATE.update(
        running=False,
        returncode=rc,
        stage="Backend ready" if rc == 0 else f"Set-up failed: {failure or f'code {rc}'} Log: {log_path}",
    )
    return rc


def rollback_info(root: Path) -> str | None:
    """The environment a rollback would return to, None when there is none."""
    previous = env_pointer(root)[1]
    if previous and venv_python(env_folder(root, previous)).is_file():
        return previous
    return None


def roll_back(root: Path) -> str:
    """Put the previous environment back in use (instant: set-up rewrites the pointer file)."""
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_ROOT))
    env.pop("PYTHONHOME", None)
    args = [str(active_env_python(root)), "-m", "backend", "setup", "--root", str(root), "--rollback"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1])
    current = env_pointer(root)[0] or ""
    SETUP_STATE.update(stage=f"Rolled back to {current}", lines=[], steps=[])
    return current


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
