"""Motion from a Blender animation, with no reference clip: for an engine driven by a
skeleton, the rig's joints projected through the active camera frame by frame as Wan pose
points; for an engine driven by video, the animation rendered through the camera (a fast
Workbench playblast) as the driving clip."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
from bpy_extras.object_utils import world_to_camera_view

from ..core.guide_layout import POINT_NAMES
from ..core.rig_mapping import build_mapping
from .inputs import camera_render


def sample_pose_points(scene, armature, width: int, height: int, overrides: str = "") -> dict:
    """A pose-points file (the keypoints.json shape, with ``pose_points`` only) for
    every frame of the scene's range, at the scene's frame rate."""
    camera = scene.camera
    if camera is None:
        raise ValueError("The scene has no active camera to project the rig through; set one.")
    scheme, mapping = build_mapping([b.name for b in armature.pose.bones], overrides)
    body = [n for n in POINT_NAMES[:20] if n in mapping]
    if len(body) < 8:
        raise ValueError(
            f"Only {len(body)} of the 20 pose points were found on '{armature.name}' ({scheme} naming guessed). "
            "Add a mapping such as 'LWrist=hand_L:head, RWrist=hand_R:head'."
        )
    keep = scene.frame_current
    frames = []
    try:
        for f in range(scene.frame_start, scene.frame_end + 1):
            scene.frame_set(f)
            pts = []
            for name in POINT_NAMES:
                ref = mapping.get(name)
                if ref is None:
                    pts.append([0.0, 0.0, 0.0])
                    continue
                pb = armature.pose.bones[ref.bone]
                local = (
                    pb.head
                    if ref.end == "head"
                    else pb.tail
                    if ref.end == "tail"
                    else (pb.head + pb.tail) / 2
                )
                uv = world_to_camera_view(scene, camera, armature.matrix_world @ local)
                visible = 1.0 if uv.z > 0 else 0.0  # behind the camera: not drawn
                pts.append([uv.x * width, (1.0 - uv.y) * height, visible])
            frames.append({"frame": f, "pose_points": pts})
    finally:
        scene.frame_set(keep)
    return {
        "format": "wan-pose-points",
        "source": f"Blender armature '{armature.name}' ({scheme} naming)",
        "mapped": sorted(mapping),
        "fps": scene.render.fps / scene.render.fps_base,
        "pose_points_width": width,
        "pose_points_height": height,
        "frames": frames,
    }


def write_pose_points(data: dict, folder: Path, stem: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while (target := folder / f"{stem}_{n:03d}.json").exists():
        n += 1
    target.write_text(json.dumps(data))
    return target


def new_folder(parent: Path, stem: str) -> Path:
    """An empty folder no earlier playblast used: ``<stem>_NNN`` under ``parent``."""
    parent.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        target = parent / f"{stem}_{n:03d}"
        try:
            target.mkdir()
            return target
        except FileExistsError:
            n += 1


def render_playblast(scene, folder: Path, width: int, height: int) -> Path:
    """The scene's frame range rendered through the active camera with Workbench (solid
    shading: fast, and what a video-driven engine needs to read the motion) as numbered PNGs
    at ``width`` x ``height``; the scene's own render settings are restored afterwards.
    Returns the folder, which the backend reads as an image sequence."""
    if scene.camera is None:
        raise ValueError("The scene has no active camera to render the animation through; set one.")
    if scene.frame_end < scene.frame_start:
        raise ValueError("The scene's frame range is empty: set its End after its Start.")
    settings = {
        "engine": "BLENDER_WORKBENCH",
        "resolution_x": width,
        "resolution_y": height,
        "resolution_percentage": 100,
        "use_file_extension": True,
        "filepath": str(folder / "frame_####"),
    }
    with camera_render(scene, **settings):
        bpy.ops.render.render(animation=True, scene=scene.name)
    n = scene.frame_end - scene.frame_start + 1
    written = sorted(folder.glob("frame_*.png"))
    if len(written) != n:
        raise ValueError(
            f"The playblast wrote {len(written)} of {n} frames to {folder}; check free disk space."
        )
    return folder
