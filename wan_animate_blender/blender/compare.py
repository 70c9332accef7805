"""Compare a take: reference, skeleton and result side by side in a new Sequencer
scene, frame-aligned, leaving the artist's own edit untouched."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core.result_files import read_job
from . import compat


def _image_strip(coll, name: str, files: list[Path], channel: int, start: int):
    strip = coll.new_image(
        name=name, filepath=str(files[0]), channel=channel, frame_start=start, fit_method="ORIGINAL"
    )
    strip.directory = str(files[0].parent) + "/"
    strip.elements[0].filename = files[0].name
    for f in files[1:]:
        strip.elements.append(f.name)  # names may repeat: a held pose frame
    strip.frame_final_duration = len(files)
    return strip


def build_compare(job_dir: Path, source_scene) -> object:
    job_dir = Path(job_dir)
    job = read_job(job_dir)
    w, h = job["settings"]["width"], job["settings"]["height"]
    clip = job["inputs"]["clip"]
    scene = bpy.data.scenes.new(f"Wan compare {job['name']}")
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 3 * w, h, 100
    scene.render.fps, scene.render.fps_base = source_scene.render.fps, source_scene.render.fps_base
    scene.view_settings.view_transform = "Standard"  # show the frames' own colours, untouched
    n = job["frame_count"]
    scene.frame_start, scene.frame_end = 1, n
    coll = compat.strips(scene.sequence_editor_create())

    ref = coll.new_movie(
        name="reference", filepath=clip["path"], channel=1, frame_start=1, fit_method="ORIGINAL"
    )
    scale = min(w / clip["width"], h / clip["height"])
    ref.transform.scale_x = ref.transform.scale_y = scale
    pose = _image_strip(
        coll, "skeleton", [job_dir / "pose" / f"pose_{m + 1:06d}.png" for m in job["output_to_model"]], 2, 1
    )
    result = _image_strip(coll, "result", [job_dir / f"frame_{i + 1:06d}.png" for i in range(n)], 3, 1)
    for strip, offset in ((ref, -w), (pose, 0), (result, w)):
        strip.transform.offset_x = offset
    ref.frame_final_duration = min(ref.frame_final_duration, n)
    scene["wan_animate_job"] = str(job_dir)
    return scene
