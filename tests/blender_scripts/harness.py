"""Runs inside a bpy-wheel interpreter: installs the built extension exactly as a
user would and hands results back to pytest as one JSON line."""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path

import bpy

MODULE = "bl_ext.user_default.wan_animate"
MARK = "WAN_RESULT:"


def args() -> dict:
    return json.loads(sys.argv[-1])


def emit(result: dict) -> None:
    print(MARK + json.dumps(result, default=str), flush=True)


def install(zip_path: str):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    return importlib.import_module(MODULE)


def compat():
    """The installed add-on's compat module: the one place test scripts read a strip's range from,
    as the add-on does, whatever the Blender version."""
    return importlib.import_module(MODULE + ".wan_animate_blender.blender.compat")


def configure(a: dict) -> None:
    p = bpy.context.preferences.addons[MODULE].preferences
    p.backend_python = a.get("backend_python", "")
    p.model_dir = a.get("model_dir", "")
    p.output_dir = a.get("output_dir", "")
    p.cpu_threads = 1


def build_scene(width: int = 160, height: int = 120):
    scene = bpy.context.scene
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    bpy.ops.mesh.primitive_monkey_add(location=(0, 0, 0))
    bpy.ops.object.camera_add(location=(0, -4, 0), rotation=(1.5708, 0, 0))
    scene.camera = bpy.context.active_object
    bpy.ops.object.light_add(type="SUN", location=(2, -2, 3))
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    return scene


def strips(scene):
    ed = scene.sequence_editor
    if ed is None:
        return []
    return list(ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all)


def main(fn) -> None:
    try:
        result = fn(args())
    except Exception:  # noqa: BLE001 - the test reads the traceback
        result = {"harness_error": traceback.format_exc()}
    emit(result)
    sys.stdout.flush()
    # The bpy wheel once hung at exit: leave without interpreter teardown.
    import os

    os._exit(0)


def wait_job(runtime, timeout: float = 300.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while runtime.current_job() is not None and time.monotonic() < deadline:
        runtime.poll_running_job()
        time.sleep(0.1)


def path_info(p: str | Path) -> dict:
    p = Path(p)
    return {"exists": p.exists(), "files": sorted(x.name for x in p.iterdir()) if p.is_dir() else None}
