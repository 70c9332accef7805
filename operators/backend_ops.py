"""Set up the backend's Python environment and stop the backend: the buttons; the
set-up itself is in wan_animate_blender.blender.backend_setup."""

from __future__ import annotations

import threading

import bpy

from ..wan_animate_blender.blender import runtime
from ..wan_animate_blender.blender.backend_setup import SETUP_STATE, find_setup_python, run_setup, setup_paths
from ..wan_animate_blender.blender.settings import prefs


class WANANIM_OT_setup_backend(bpy.types.Operator):
    """Create the backend's Python environment (torch, diffusers, mediapipe) outside Blender"""

    bl_idname = "wan_animate.setup_backend"
    bl_label = "Set up backend"

    def execute(self, context):
        if SETUP_STATE["running"]:
            self.report({"WARNING"}, "Set-up is already running")
            return {"CANCELLED"}
        cmd = find_setup_python(prefs(context).setup_python)
        if cmd is None:
            self.report({"ERROR"}, "No Python 3.11 found. Install Python 3.11 and set 'Python for set-up'.")
            return {"CANCELLED"}
        venv, log = setup_paths()
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
