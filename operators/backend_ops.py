"""Setting up the backend's own Python environment (outside Blender's Python, with
a visible log and progress) and stopping the backend."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import bpy

from ..panels.preferences import prefs, user_dir
from ..wan_animate_blender.blender import runtime
from ..wan_animate_blender.core.backend_process import EXTENSION_ROOT

SETUP_STATE: dict = {"running": False, "stage": "", "steps": [], "lines": [], "returncode": None}


def find_setup_python(configured: str) -> list[str] | None:
    if configured:
        return [bpy.path.abspath(configured)]
    if sys.platform == "win32" and shutil.which("py"):
        return ["py", "-3.11"]
    for name in ("python3.11", "python3", "python"):
        if found := shutil.which(name):
            return [found]
    return None


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


class WANANIM_OT_setup_backend(bpy.types.Operator):
    """Create the backend's Python environment (torch, diffusers, mediapipe) outside Blender"""

    bl_idname = "wan_animate.setup_backend"
    bl_label = "Set up backend"

    def execute(self, context):
        if SETUP_STATE["running"]:
            self.report({"WARNING"}, "Set-up is already running")
            return {"CANCELLED"}
        p = prefs(context)
        cmd = find_setup_python(p.setup_python)
        if cmd is None:
            self.report({"ERROR"}, "No Python 3.11 found. Install Python 3.11 and set 'Python for set-up'.")
            return {"CANCELLED"}
        venv = user_dir("backend-env")
        log = user_dir("logs") / "setup.log"
        if bpy.app.background:
            rc = run_setup(cmd, venv, log)
            self.report({"INFO"} if rc == 0 else {"ERROR"}, SETUP_STATE["stage"])
            return {"FINISHED"} if rc == 0 else {"CANCELLED"}
        threading.Thread(target=run_setup, args=(cmd, venv, log), daemon=True).start()

        def redraw():
            for window in context.window_manager.windows:
                for area in window.screen.areas:
                    area.tag_redraw()
            return 0.5 if SETUP_STATE["running"] else None

        bpy.app.timers.register(redraw, first_interval=0.5)
        return {"FINISHED"}


class WANANIM_OT_stop_backend(bpy.types.Operator):
    """Stop the local backend process and free its memory"""

    bl_idname = "wan_animate.stop_backend"
    bl_label = "Stop Backend"

    def execute(self, context):
        if runtime.current_job() is not None:
            self.report({"ERROR"}, "A job is running; cancel it before stopping the backend.")
            return {"CANCELLED"}
        runtime.stop_backend()
        return {"FINISHED"}
