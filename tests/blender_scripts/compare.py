"""Generate, press Compare Take, and render one frame of the comparison."""

import json
from pathlib import Path

import bpy
from harness import build_scene, compat, configure, install, main


def run(a):
    install(a["zip"])
    configure(a)
    scene = build_scene()
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames, s.clip_path = "preview", 1, 33, a["clip"]
    scene.render.fps, scene.render.fps_base = 30, 1.001
    bpy.ops.wan_animate.generate()
    ed = scene.sequence_editor
    strip = next(
        x for x in (ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all) if x.type == "IMAGE"
    )
    job_dir = strip["wan_animate_result"]
    bpy.ops.wan_animate.compare(job_dir=job_dir)
    comp = next(sc for sc in bpy.data.scenes if sc.name.startswith("Wan compare"))
    ced = comp.sequence_editor
    strips = {x.name: x for x in (ced.strips_all if hasattr(ced, "strips_all") else ced.sequences_all)}
    f = a["frame"]
    comp.frame_set(f + 1)
    comp.render.filepath = a["render"]
    comp.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True, scene=comp.name)
    job = json.loads((Path(job_dir) / "job.json").read_text())
    return {
        "scene": comp.name,
        "res": [comp.render.resolution_x, comp.render.resolution_y],
        "strips": {
            k: [v.channel, compat().strip_duration(v), v.transform.offset_x] for k, v in strips.items()
        },
        "job_dir": job_dir,
        "model_frame": job["output_to_model"][f],
        "frame_count": job["frame_count"],
        "artist_scene_strips": len(list(ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all)),
    }


main(run)
