"""Two shots through the Python API: one with every sidebar setting changed from its
default, one left at the Shot defaults (speed and memory from the preferences) while
the scene's sidebar holds other values."""

import dataclasses
import json
from pathlib import Path

import bpy
from harness import MODULE, build_scene, configure, install, main


def run(a):
    install(a["zip"])
    configure(a)
    p = bpy.context.preferences.addons[MODULE].preferences
    p.memory_mode, p.attention, p.compile, p.fp8 = "sequential_offload", "sdpa", False, False
    scene = build_scene()
    s = scene.wan_animate
    # The sidebar says otherwise everywhere: a Shot must not take any of it.
    s.quality, s.steps, s.seed, s.retarget, s.estimator = "720p", 9, 99, False, "mediapipe"
    s.pick_performer, s.performer_point, s.relight_strength = True, (0.1, 0.9), 0.25
    s.sampler = "unipc"
    api = __import__(MODULE + ".wan_animate_blender.api", fromlist=["api"])
    builder = __import__(MODULE + ".wan_animate_blender.blender.job_builder", fromlist=["job_builder"])
    shot_fields = {f.name for f in dataclasses.fields(api.Shot)}
    common = {"clip": a["clip"], "character": a["character"], "segment_frames": 17, "steps": 2}
    shots = [
        api.Shot(
            "changed",
            quality="preview",
            seed=7,
            overlap=5,
            colour_match=False,
            step_cache=0.1,
            loras=[(a["lora"], 0.75)],
            retarget=False,
            estimator="vitpose",
            person=(220 / 320, 120 / 240),  # on the smaller of the two people
            person_frame=5,  # ... as seen on the clip's sixth frame
            relight_strength=0.5,
            relight_lora=a["relight_lora"],
            memory_mode="group_offload",
            attention="sdpa_math",
            compile=True,
            fp8=True,
            sampler="unipc",
            **common,
        ),
        api.Shot("defaults", width=64, height=48, **common),
    ]
    # The sidebar's pick, as a script (or a click in the Image Editor) makes it.
    bpy.ops.wan_animate.pick_performer(x=0.25, y=0.75, frame=12)
    picked = builder.scene_values(scene)
    results = api.run_batch(shots)
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    runtime.stop_backend()
    settings = {}
    for r in results:
        if r.ok:
            settings[r.name] = json.loads((Path(r.result_dir) / "job.json").read_text())["settings"]
    return {
        "results": [r.__dict__ for r in results],
        "settings": settings,
        "sidebar_not_in_shot": sorted(set(builder.scene_values(scene)) - shot_fields - {"output_fps"}),
        "bpy_version": list(bpy.app.version),
        "sidebar_pick": [picked["person"], picked["person_frame"], s.pick_performer],
    }


main(run)
