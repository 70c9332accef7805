"""Generate from an animated armature through the camera, with no reference clip."""

import json
from pathlib import Path

import bpy
from bpy_extras.object_utils import world_to_camera_view
from harness import MODULE, build_scene, configure, install, main, strips

BONES = {
    "neck": ((0, 0, 0.6), (0, 0, 0.75)),
    "head": ((0, 0, 0.75), (0, 0, 0.95)),
    "upper_arm.L": ((0.2, 0, 0.55), (0.45, 0, 0.3)),
    "forearm.L": ((0.45, 0, 0.3), (0.65, 0, 0.1)),
    "hand.L": ((0.65, 0, 0.1), (0.75, 0, 0.0)),
    "thigh.L": ((0.1, 0, -0.1), (0.15, 0, -0.5)),
    "shin.L": ((0.15, 0, -0.5), (0.15, 0, -0.85)),
    "foot.L": ((0.15, 0, -0.85), (0.15, -0.15, -0.95)),
    "toe.L": ((0.15, -0.15, -0.95), (0.15, -0.25, -0.95)),
}
for _n, (_h, _t) in list(BONES.items()):
    if _n.endswith(".L"):
        BONES[_n[:-2] + ".R"] = ((-_h[0], _h[1], _h[2]), (-_t[0], _t[1], _t[2]))


def make_rig(scene):
    arm = bpy.data.armatures.new("Performer")
    obj = bpy.data.objects.new("Performer", arm)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for n, (h, t) in BONES.items():
        eb = arm.edit_bones.new(n)
        eb.head, eb.tail = h, t
    bpy.ops.object.mode_set(mode="OBJECT")
    for f, x in ((1, -0.5), (20, 0.5)):
        obj.location.x = x
        obj.keyframe_insert("location", frame=f)
    return obj


def run(a):
    install(a["zip"])
    configure(a)
    scene = build_scene()
    scene.frame_start, scene.frame_end = 1, 20
    scene.render.fps = 24
    rig = make_rig(scene)
    s = scene.wan_animate
    s.quality, s.steps, s.segment_frames = "preview", 1, 17
    out = {"runs": []}
    for face in (a["face"], ""):
        before = {x.name for x in strips(scene)}
        res = sorted(bpy.ops.wan_animate.generate_from_armature(armature=rig.name, face_image=face))
        new = [x for x in strips(scene) if x.name not in before]
        run = {"result": res, "status": s.status, "strips": [(x.name, len(x.elements)) for x in new]}
        if new:
            job_dir = Path(bpy.path.abspath(new[0].directory))
            job = json.loads((job_dir / "job.json").read_text())
            run.update(
                {
                    "job_dir": str(job_dir),
                    "estimator": job["estimator"],
                    "model_frames": job["model_frames"],
                    "clip": job["inputs"]["clip"],
                    "size": [job["settings"]["width"], job["settings"]["height"]],
                }
            )
        out["runs"].append(run)
    # Expected pixel of the left wrist (hand.L head) at scene frame 9, through the camera.
    w, h = out["runs"][0]["size"]
    scene.frame_set(9)
    uv = world_to_camera_view(scene, scene.camera, rig.matrix_world @ rig.pose.bones["hand.L"].head)
    out["wrist_px"] = [uv.x * w, (1 - uv.y) * h]
    out["guides"] = [o.name for o in bpy.data.objects if o.type == "ARMATURE" and "wan_animate_job" in o]
    runtime = __import__(MODULE + ".wan_animate_blender.blender.runtime", fromlist=["runtime"])
    runtime.stop_backend()
    return out


main(run)
