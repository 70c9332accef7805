"""The preferences' Roll back button: with two backend environments kept side by side, it puts
the previous one back in use (and a second press undoes it); with none kept it is greyed out."""

import json
import subprocess

import bpy
from harness import MODULE, install, main


def run(a):
    install(a["zip"])
    p = bpy.context.preferences.addons[MODULE].preferences
    folders = __import__(MODULE + ".wan_animate_blender.blender.folders", fromlist=["folders"])
    ops = __import__(MODULE + ".wan_animate_blender.blender.backend_setup", fromlist=["backend_setup"])
    root = folders.user_dir("backend-env")
    for name in ("old", "new"):  # two environments as set-up leaves them (pip is not needed here)
        subprocess.run([a["python"], "-m", "venv", "--without-pip", str(root / "envs" / name)], check=True)
    pointer = root / "current.json"
    pointer.write_text(json.dumps({"current": "envs/new", "previous": "envs/old"}))
    out = {
        "before": str(folders.resolved_backend_python(p)),
        "poll": bpy.ops.wan_animate.rollback_backend.poll(),
    }
    out["first"] = sorted(bpy.ops.wan_animate.rollback_backend())
    out["after_first"] = str(folders.resolved_backend_python(p))
    out["stage"] = ops.SETUP_STATE["stage"]
    out["second"] = sorted(bpy.ops.wan_animate.rollback_backend())
    out["after_second"] = str(folders.resolved_backend_python(p))
    pointer.write_text(json.dumps({"current": "envs/new", "previous": None}))
    out["poll_without_previous"] = bpy.ops.wan_animate.rollback_backend.poll()
    return out


main(run)
