"""Set up the backend's Python environment, download and check the weights, stop the
backend: the buttons; the work itself is in wan_animate_blender.blender.backend_setup."""

from __future__ import annotations

import threading

import bpy

from ..wan_animate_blender.blender import runtime
from ..wan_animate_blender.blender.backend_setup import (
    CHECK_STATE,
    DOWNLOAD_STATE,
    NO_PYTHON,
    SETUP_STATE,
    cancel_download,
    download_log_path,
    find_setup_python,
    online_refusal,
    roll_back,
    rollback_info,
    run_check,
    run_setup,
    setup_paths,
    start_download,
    wait_download,
)
from ..wan_animate_blender.blender.folders import resolved_backend_python, resolved_model_dir
from ..wan_animate_blender.blender.settings import prefs


class WANANIM_OT_setup_backend(bpy.types.Operator):
    """Create or update the backend's Python environment (torch, diffusers, mediapipe) outside Blender:
    a new environment is tested before it replaces the one in use, which is kept for a rollback"""

    bl_idname = "wan_animate.setup_backend"
    bl_label = "Set up backend"

    def execute(self, context):
        if SETUP_STATE["running"]:
            self.report({"WARNING"}, "Set-up is already running")
            return {"CANCELLED"}
        cmd = find_setup_python(prefs(context).setup_python)
        if cmd is None:
            SETUP_STATE.update(stage=NO_PYTHON, lines=[])
            self.report({"ERROR"}, NO_PYTHON)
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


class WANANIM_OT_rollback_backend(bpy.types.Operator):
    """Go back to the backend environment in use before the last set-up"""

    bl_idname = "wan_animate.rollback_backend"
    bl_label = "Roll back"

    @classmethod
    def poll(cls, context):
        return not SETUP_STATE["running"] and rollback_info(setup_paths()[0]) is not None

    def execute(self, context):
        if runtime.current_job() is not None:
            self.report({"ERROR"}, "A job is running; cancel it before rolling back the backend.")
            return {"CANCELLED"}
        try:
            name = roll_back(setup_paths()[0])
        except RuntimeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        runtime.stop_backend()  # the next job starts the rolled-back environment's Python
        self.report({"INFO"}, f"Backend environment rolled back to {name}")
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


def _redraw_while(state: dict, context) -> None:
    wm = context.window_manager

    def redraw():
        for window in wm.windows:
            for area in window.screen.areas:
                area.tag_redraw()
        return 0.5 if state["running"] else None

    bpy.app.timers.register(redraw, first_interval=0.5)


class WANANIM_OT_download_weights(bpy.types.Operator):
    """Download the Wan2.2-Animate weights and the preprocessing models into the model folder
    (about 85 GB; resumes an interrupted download). Needs Blender's Allow Online Access"""

    bl_idname = "wan_animate.download_weights"
    bl_label = "Download weights"

    def execute(self, context):
        if DOWNLOAD_STATE["running"]:
            self.report({"WARNING"}, "The download is already running")
            return {"CANCELLED"}
        if refusal := online_refusal():
            DOWNLOAD_STATE.update(stage=refusal, lines=[])
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        p = prefs(context)
        try:
            start_download(resolved_backend_python(p), resolved_model_dir(p), download_log_path())
        except OSError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background:
            rc = wait_download()
            self.report({"INFO"} if rc == 0 else {"ERROR"}, DOWNLOAD_STATE["stage"])
            return {"FINISHED"} if rc == 0 else {"CANCELLED"}
        _redraw_while(DOWNLOAD_STATE, context)
        return {"FINISHED"}


class WANANIM_OT_cancel_download(bpy.types.Operator):
    """Stop the weights download; Download weights resumes it later"""

    bl_idname = "wan_animate.cancel_download"
    bl_label = "Stop download"

    def execute(self, context):
        if not cancel_download():
            self.report({"WARNING"}, "No download is running")
            return {"CANCELLED"}
        return {"FINISHED"}


class WANANIM_OT_check_model(bpy.types.Operator):
    """Check the model folder: every downloaded file present with its size, naming what is missing"""

    bl_idname = "wan_animate.check_model"
    bl_label = "Check"

    hashes: bpy.props.BoolProperty(
        name="Check sha256",
        description="Also compare every file's sha256 (reads all 85 GB: minutes)",
        default=False,
    )

    def execute(self, context):
        if CHECK_STATE["running"]:
            self.report({"WARNING"}, "A check is already running")
            return {"CANCELLED"}
        model_dir = resolved_model_dir(prefs(context))
        if bpy.app.background:
            ok = run_check(model_dir, self.hashes)
            self.report({"INFO"} if ok else {"ERROR"}, " ".join(CHECK_STATE["lines"]))
            return {"FINISHED"} if ok else {"CANCELLED"}
        CHECK_STATE["running"] = True  # before the thread starts: a second press is refused
        threading.Thread(target=run_check, args=(model_dir, self.hashes), daemon=True).start()
        _redraw_while(CHECK_STATE, context)
        return {"FINISHED"}


CLASSES = (
    WANANIM_OT_setup_backend,
    WANANIM_OT_rollback_backend,
    WANANIM_OT_stop_backend,
    WANANIM_OT_download_weights,
    WANANIM_OT_cancel_download,
    WANANIM_OT_check_model,
)
