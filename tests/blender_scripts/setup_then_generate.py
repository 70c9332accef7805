"""The artist's first run: install the extension, press 'Set up backend' (a real
environment made outside Blender's Python), then Generate with no other set-up."""

import sys
from pathlib import Path

import bpy
from harness import MODULE, build_scene, install, main, strips


def run(a):
    install(a["zip"])
    p = bpy.context.preferences.addons[MODULE].preferences
    p.setup_python, p.model_dir, p.output_dir, p.cpu_threads = (
        a["setup_python"],
        a["model_dir"],
        a["output_dir"],
        1,
    )
    ops = __import__(MODULE + ".wan_animate_blender.blender.backend_setup", fromlist=["backend_setup"])
    folders = __import__(MODULE + ".wan_animate_blender.blender.folders", fromlist=["folders"])
    result = sorted(bpy.ops.wan_animate.setup_backend())
    env_python = folders.resolved_backend_python(p)
    out = {
        "setup_result": result,
        "stage": ops.SETUP_STATE["stage"],
        "steps": ops.SETUP_STATE["steps"],
        "env_python": str(env_python),
        "env_python_exists": env_python.is_file(),
        "blender_python": sys.executable,
        "log": (folders.user_dir("logs") / "setup.log").read_text()[-2000:],
    }
    scene = build_scene()
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames, s.clip_path = "preview", 1, 33, a["clip"]
    try:
        out["generate"] = sorted(bpy.ops.wan_animate.generate())
    except RuntimeError as exc:
        out["generate"], out["error"] = ["CANCELLED"], str(exc)
    out["strips"] = [(x.name, len(x.elements)) for x in strips(scene)]
    out["status"] = s.status
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    runtime.stop_backend()
    out["blender_site_has_diffusers"] = any(
        (Path(x) / "diffusers").exists() for x in sys.path if x.endswith("site-packages")
    )
    return out


main(run)
