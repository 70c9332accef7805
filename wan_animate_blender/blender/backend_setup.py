"""Creating the backend's Python environment: a subprocess outside Blender's Python
(so torch and friends never load into Blender), its lines logged and its progress
kept in SETUP_STATE for the preferences to draw."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
