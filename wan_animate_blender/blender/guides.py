"""Armature guides: a job's skeleton as an armature that, seen through the camera,
lies exactly over the generated frames (shown as the camera's background), one
bone per keypoint, keyframed per frame, with confidence kept and weak frames marked."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
from mathutils import Vector

from ..core.guide_layout import PARENTS, GuideTrack, edited_keypoints, load_track
from ..core.result_files import read_keypoints
from . import compat

GUIDE_DEPTH = 10.0  # camera units in front of the lens; any depth projects the same
TIP = 0.02  # length of bones with nothing to stretch to, as a share of the frame height


def camera_frame(scene, camera, depth: float = GUIDE_DEPTH) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of the camera's frame at ``depth``, in camera space."""
    corners = camera.data.view_frame(scene=scene)
    if camera.data.type == "ORTHO":
        pts = [Vector((c.x, c.y, -depth)) for c in corners]
    else:
        pts = [c * (depth / -c.z) for c in corners]
    xs, ys = [p.x for p in pts], [p.y for p in pts]
    return min(xs), max(xs), min(ys), max(ys)


def to_camera_space(
    track: GuideTrack, frame: tuple[float, float, float, float], x: float, y: float
) -> Vector:
    x0, x1, y0, y1 = frame
    return Vector((x0 + (x / track.width) * (x1 - x0), y1 - (y / track.height) * (y1 - y0), -GUIDE_DEPTH))


def build_guides(scene, job_dir: Path, frame_start: int, name: str):
    """Create the guide armature for the job in ``job_dir``; returns the object."""
    camera = scene.camera
    if camera is None:
        raise RuntimeError(
            "Guides need the active camera the character was rendered from; set one and retry."
        )
    track = load_track(job_dir)
    frame = camera_frame(scene, camera)
    tip = TIP * (frame[3] - frame[2])

    arm = bpy.data.armatures.new(name)
    arm.display_type = "STICK"
    obj = bpy.data.objects.new(name, arm)
    coll = bpy.data.collections.new(name)
    scene.collection.children.link(coll)
    coll.objects.link(obj)
    obj.parent = camera
    obj.show_in_front = True
    obj["wan_animate_job"] = str(job_dir)
    obj["wan_animate_frame_start"] = frame_start

    # Rest: every bone at the frame's centre pointing +Y with no roll, so a pose
    # bone's location is a plain camera-space offset.
    centre = Vector(((frame[0] + frame[1]) / 2, (frame[2] + frame[3]) / 2, -GUIDE_DEPTH))
    view_layer = bpy.context.view_layer
    prev_active = view_layer.objects.active
    view_layer.objects.active = obj
    # No undo steps of its own: edit-mode steps inside the import's undo step crash undo in 5.0.
    bpy.ops.object.mode_set("EXEC_DEFAULT", False, mode="EDIT")
    for n in track.names:
        eb = arm.edit_bones.new(n)
        eb.head = centre
        eb.tail = centre + Vector((0, tip, 0))
        eb.roll = 0.0
    bpy.ops.object.mode_set("EXEC_DEFAULT", False, mode="OBJECT")
    view_layer.objects.active = prev_active

    for n, parent in PARENTS.items():
        if parent is not None:
            c = obj.pose.bones[n].constraints.new("STRETCH_TO")
            c.target, c.subtarget = obj, parent

    # One key per bone to create the curves in any Blender version, then bulk-fill them.
    for pb in obj.pose.bones:
        pb["confidence"] = 0.0
        pb.keyframe_insert("location", frame=frame_start)
        pb.keyframe_insert('["confidence"]', frame=frame_start)
    curves = {(fc.data_path, fc.array_index): fc for fc in compat.object_fcurves(obj)}
    n_frames = track.frame_count
    for i, n in enumerate(track.names):
        cols: list[list[float]] = [[], [], [], []]
        for f, pts in enumerate(track.frames):
            x, y, c = pts[i]
            p = to_camera_space(track, frame, x, y) - centre
            for k, v in enumerate((p.x, p.y, p.z, c)):
                cols[k] += [frame_start + f, v]
        base = f'pose.bones["{n}"]'
        targets = [(f"{base}.location", k) for k in range(3)] + [(f'{base}["confidence"]', 0)]
        for (path, idx), co in zip(targets, cols, strict=True):
            fc = curves[(path, idx)]
            fc.keyframe_points.clear()
            fc.keyframe_points.add(n_frames)
            fc.keyframe_points.foreach_set("co", co)
            fc.keyframe_points.foreach_set("interpolation", [0] * n_frames)  # CONSTANT: one pose per frame
            fc.update()
    for f in track.weak:
        scene.timeline_markers.new(f"weak pose: {name}", frame=frame_start + f)
    _show_frames_behind(scene, camera, job_dir, frame_start, n_frames)
    return obj


def _show_frames_behind(scene, camera, job_dir: Path, frame_start: int, n_frames: int) -> None:
    first = sorted(Path(job_dir).glob("frame_*.png"))[0]
    img = bpy.data.images.load(str(first), check_existing=False)
    img.source = "SEQUENCE"
    cam = camera.data
    cam.show_background_images = True
    bg = cam.background_images.new()
    bg.image = img
    bg.frame_method = "STRETCH"  # the frames fill the camera frame exactly, like the guide mapping
    bg.image_user.frame_start = frame_start
    bg.image_user.frame_duration = n_frames
    bg.image_user.use_auto_refresh = True


def set_guides_visible(obj, visible: bool) -> None:
    obj.hide_viewport = not visible
    job = obj.get("wan_animate_job")
    camera = obj.parent
    if camera is not None and camera.type == "CAMERA":
        for bg in camera.data.background_images:
            if bg.image is not None and job and bpy.path.abspath(bg.image.filepath).startswith(job):
                bg.show_background_image = visible


def read_guide(obj, scene) -> dict[int, list[tuple[float, float, float]]]:
    """The guide's points back in generated-frame pixels, per output frame, as the
    artist left them (evaluated at each frame, edits included)."""
    track = load_track(Path(obj["wan_animate_job"]))
    x0, x1, y0, y1 = camera_frame(scene, scene.camera)
    start = int(obj["wan_animate_frame_start"])
    keep = scene.frame_current
    out = {}
    try:
        for f in range(track.frame_count):
            scene.frame_set(start + f)
            pts = []
            for n in track.names:
                pb = obj.pose.bones[n]
                head = pb.head  # armature space == camera space
                pts.append(
                    (
                        (head.x - x0) / (x1 - x0) * track.width,
                        (y1 - head.y) / (y1 - y0) * track.height,
                        float(pb.get("confidence", 0.0)),
                    )
                )
            out[f] = pts
    finally:
        scene.frame_set(keep)
    return out


def write_edited_keypoints(obj, scene, folder: Path) -> Path:
    """Save the guide, as edited, next to nothing it could overwrite."""
    job_dir = Path(obj["wan_animate_job"])
    saved = read_keypoints(job_dir)
    data = edited_keypoints(saved, load_track(job_dir), read_guide(obj, scene))
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while (target := folder / f"{job_dir.name}_edit_{n:03d}.json").exists():
        n += 1
    target.write_text(json.dumps(data))
    return target


def guide_armatures(scene) -> list:
    """The scene's skeleton guides (armatures made from a job)."""
    return [o for o in scene.objects if o.type == "ARMATURE" and "wan_animate_job" in o]


def result_strips(scene, job_dir: Path) -> list:
    """The strips imported from the job in ``job_dir``."""
    ed = scene.sequence_editor
    if ed is None:
        return []
    return [s for s in compat.all_strips(ed) if s.get("wan_animate_result") == str(job_dir)]
