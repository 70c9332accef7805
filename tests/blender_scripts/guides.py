"""Generate headless, then check the skeleton guide the way an artist would: through
the camera, every confident point sits on its saved keypoint."""

import json
from pathlib import Path

import bpy
from bpy_extras.object_utils import world_to_camera_view
from harness import build_scene, configure, install, main

A = [0, 6, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 17, 20]
B = [0, 5, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 18, 21]


def body_confidence(frame):
    k = frame["keypoints"]
    return sum((k[a][2] + k[b][2]) / 2 for a, b in zip(A, B, strict=True)) / 20


def run(a):
    install(a["zip"])
    configure(a)
    scene = build_scene(a.get("res_x", 160), a.get("res_y", 120))
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames, s.clip_path = "preview", 1, 33, a["clip"]
    scene.render.fps, scene.render.fps_base = 30, 1.001
    bpy.ops.wan_animate.generate()
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    out = {"status": s.status, "armatures": [o.name for o in arms]}
    if not arms:
        return out
    obj = arms[0]
    job_dir = Path(obj["wan_animate_job"])
    job = json.loads((job_dir / "job.json").read_text())
    kps = json.loads((job_dir / "keypoints.json").read_text())["frames"]
    w, h = job["settings"]["width"], job["settings"]["height"]
    cw, ch = job["inputs"]["clip"]["width"], job["inputs"]["clip"]["height"]
    sc = min(w / cw, h / ch)
    dx, dy = (w - cw * sc) / 2, (h - ch * sc) / 2
    checks, worst = 0, 0.0
    out["drawn_points"] = all("pose_drawn" in f for f in kps)
    start = obj["wan_animate_frame_start"]
    # COCO rows of points that map 1:1 (no averaging): elbows, wrists, knees, ankles, eyes, ears,
    # and the same points' places among the 20 drawn body points.
    rows = {"RElbow": 8, "RWrist": 10, "LElbow": 7, "LWrist": 9, "REye": 2, "LEye": 1, "REar": 4, "LEar": 3}
    drawn_rows = {
        "RElbow": 3,
        "RWrist": 4,
        "LElbow": 6,
        "LWrist": 7,
        "REye": 14,
        "LEye": 15,
        "REar": 16,
        "LEar": 17,
    }
    drawn = all("pose_drawn" in f for f in kps)  # the skeleton as the pose frames drew it (retargeted)
    out["retargeted"] = job["retarget"]["applied"]
    for f in (0, 17, 60, job["frame_count"] - 1):
        scene.frame_set(start + f)
        m = job["output_to_model"][f]
        for name, row in rows.items():
            if drawn:
                x, y, c = kps[m]["pose_drawn"][drawn_rows[name]]
            else:
                x, y, c = kps[m]["keypoints"][row]
            pb = obj.pose.bones[name]
            assert abs(pb["confidence"] - c) < 1e-3, (name, f, pb["confidence"], c)
            if c < 0.5:
                continue
            uv = world_to_camera_view(scene, scene.camera, obj.matrix_world @ pb.head)
            px, py = uv.x * w, (1 - uv.y) * h
            ex, ey = (x, y) if drawn else (x * sc + dx, y * sc + dy)
            err = max(abs(px - ex), abs(py - ey))
            worst = max(worst, err)
            checks += 1
    out.update(
        {
            "checks": checks,
            "worst_px": worst,
            "bones": len(obj.pose.bones),
            "bone_names": [b.name for b in obj.pose.bones],
            "markers": sum(1 for mk in scene.timeline_markers if mk.name.startswith("weak pose")),
            "weak_expected": sum(
                1 for f in range(job["frame_count"]) if body_confidence(kps[job["output_to_model"][f]]) < 0.5
            ),
            "background_images": len(scene.camera.data.background_images),
            "bg_duration": scene.camera.data.background_images[0].image_user.frame_duration,
            "frame_count": job["frame_count"],
        }
    )
    return out


main(run)
