"""Edit a guide bone the way an artist does (move it in pose mode, key it), press
Regenerate from Guide, and read the new job's pose frame."""

import json
from pathlib import Path

import bpy
from harness import MODULE, build_scene, configure, install, main, strips


def run(a):
    install(a["zip"])
    configure(a)
    scene = build_scene()
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames, s.clip_path = "preview", 1, 33, a["clip"]
    scene.render.fps, scene.render.fps_base = 30, 1.001
    bpy.ops.wan_animate.generate()
    guide = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    job_dir = Path(guide["wan_animate_job"])
    job = json.loads((job_dir / "job.json").read_text())
    guides = __import__(MODULE + ".wan_animate_blender.blender.guides", fromlist=["guides"])

    f = a["frame"]
    frame = int(guide["wan_animate_frame_start"]) + f
    before = guides.read_guide(guide, scene)[f]
    pb = guide.pose.bones["RWrist"]
    scene.frame_set(frame)
    # Drag the wrist to a chosen spot of the frame (the guide's rest pose sits at the frame's centre).
    x0, x1, y0, y1 = guides.camera_frame(scene, scene.camera)
    tx, ty = a["target"]
    pb.location = (x0 + tx * (x1 - x0) - (x0 + x1) / 2, y1 - ty * (y1 - y0) - (y0 + y1) / 2, 0.0)
    pb.keyframe_insert("location", frame=frame)
    after = guides.read_guide(guide, scene)[f]
    idx = list(pb.id_data.pose.bones.keys()).index("RWrist")

    before_strips = {x.name for x in strips(scene)}
    result = sorted(bpy.ops.wan_animate.regenerate_from_guides(guide=guide.name))
    new = [x for x in strips(scene) if x.name not in before_strips]
    out = {
        "result": result,
        "status": s.status,
        "new_strips": [x.name for x in new],
        "old": before[idx],
        "new": after[idx],
        "model_frame": job["output_to_model"][f],
        "old_job": str(job_dir),
    }
    if new:
        new_dir = Path(bpy.path.abspath(new[0].directory))
        new_job = json.loads((new_dir / "job.json").read_text())
        out.update(
            {
                "new_job": str(new_dir),
                "estimator": new_job["estimator"],
                "new_channel": new[0].channel,
                "old_channel": next(
                    x.channel for x in strips(scene) if x.get("wan_animate_result") == str(job_dir)
                ),
                "new_frame_start": new[0].frame_start,
                "size": [new_job["settings"]["width"], new_job["settings"]["height"]],
            }
        )
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    runtime.stop_backend()
    return out


main(run)
