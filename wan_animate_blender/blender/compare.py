"""Compare a take: reference, skeleton and result side by side in a new Sequencer
scene, frame-aligned, leaving the artist's own edit untouched. Several takes of one shot (from
either engine) are laid out the same way: the reference, then each take labelled by its engine."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core.engine_choice import label as engine_label
from ..core.result_files import read_job
from . import compat


class CompareError(ValueError):
    """Takes that cannot be compared, with what to do instead."""


def _image_strip(coll, name: str, files: list[Path], channel: int, start: int):
    strip = coll.new_image(
        name=name, filepath=str(files[0]), channel=channel, frame_start=start, fit_method="ORIGINAL"
    )
    strip.directory = str(files[0].parent) + "/"
    strip.elements[0].filename = files[0].name
    for f in files[1:]:
        strip.elements.append(f.name)  # names may repeat: a held pose frame
    compat.set_strip_duration(strip, len(files))
    return strip


def build_compare(job_dir: Path, source_scene) -> object:
    """Reference, skeleton (for engines driven by one) and result, side by side; for a cast,
    the plate and each pass (the last is the result), labelled by pass."""
    job_dir = Path(job_dir)
    job = read_job(job_dir)
    if job.get("cast"):
        passes = [job_dir / p["folder"] for p in job["cast"]]
        labels = [f"Cast {p['pass']} of {len(passes)}" for p in job["cast"]]
        return build_compare_takes(passes, source_scene, labels)
    w, h = job["settings"]["width"], job["settings"]["height"]
    clip = job["inputs"]["clip"]
    # Engines that read the clip itself (Wan-Animate-2) draw no skeleton: two columns then.
    has_pose = (job_dir / "pose").is_dir()
    columns = 3 if has_pose else 2
    scene = bpy.data.scenes.new(f"Wan compare {job['name']}")
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = (
        columns * w,
        h,
        100,
    )
    scene.render.fps, scene.render.fps_base = source_scene.render.fps, source_scene.render.fps_base
    scene.view_settings.view_transform = "Standard"  # show the frames' own colours, untouched
    n = job["frame_count"]
    scene.frame_start, scene.frame_end = 1, n
    coll = compat.strips(scene.sequence_editor_create())

    clip_path = Path(clip["path"])
    if clip_path.is_dir():  # a folder of frames (an image strip's, a playblast)
        ref = _image_strip(coll, "reference", sorted(clip_path.glob("*.png"))[:n], 1, 1)
    else:
        ref = coll.new_movie(
            name="reference", filepath=str(clip_path), channel=1, frame_start=1, fit_method="ORIGINAL"
        )
    scale = min(w / clip["width"], h / clip["height"])
    ref.transform.scale_x = ref.transform.scale_y = scale
    shown = [ref]
    if has_pose:
        shown.append(
            _image_strip(
                coll,
                "skeleton",
                [job_dir / "pose" / f"pose_{m + 1:06d}.png" for m in job["output_to_model"]],
                2,
                1,
            )
        )
    shown.append(_image_strip(coll, "result", [job_dir / f"frame_{i + 1:06d}.png" for i in range(n)], 3, 1))
    for i, strip in enumerate(shown):
        strip.transform.offset_x = (i - (columns - 1) / 2) * w
    compat.set_strip_duration(ref, min(compat.strip_duration(ref), n))
    scene["wan_animate_job"] = str(job_dir)
    return scene


def _same_clip(a: dict, b: dict) -> bool:
    """The same reference clip: the same file contents when both are known, else the same path."""
    if a.get("sha256") and b.get("sha256"):
        return a["sha256"] == b["sha256"]
    return Path(a["path"]).resolve() == Path(b["path"]).resolve()


def build_compare_takes(job_dirs: list[Path], source_scene, labels: list[str] | None = None) -> object:
    """Several takes of one shot side by side: the reference, then each take at its own job's
    size scaled to one height (the tallest take's), all starting on frame 1, each labelled by
    its engine and take name (or by ``labels``), so the artist can pick one."""
    dirs = [Path(d) for d in job_dirs]
    jobs = [read_job(d) for d in dirs]
    clip = jobs[0]["inputs"]["clip"]
    for job in jobs[1:]:
        if not _same_clip(clip, job["inputs"]["clip"]):
            raise CompareError(
                f"'{jobs[0]['name']}' and '{job['name']}' were made from different reference clips "
                f"({Path(clip['path']).name}, {Path(job['inputs']['clip']['path']).name}): select takes of one shot."
            )
    height = max(j["settings"]["height"] for j in jobs)
    widths = [round(clip["width"] * height / clip["height"])]
    widths += [round(j["settings"]["width"] * height / j["settings"]["height"]) for j in jobs]
    total = sum(widths)
    n = max(j["frame_count"] for j in jobs)
    scene = bpy.data.scenes.new(f"Wan compare {jobs[0]['name']} ({len(jobs)} takes)")
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = (
        total,
        height,
        100,
    )
    scene.render.fps, scene.render.fps_base = source_scene.render.fps, source_scene.render.fps_base
    scene.view_settings.view_transform = "Standard"  # show the frames' own colours, untouched
    scene.frame_start, scene.frame_end = 1, n
    coll = compat.strips(scene.sequence_editor_create())
    # Each panel's centre as an offset from the canvas centre (strips are drawn centred).
    lefts = [sum(widths[:i]) for i in range(len(widths))]
    centres = [left + w / 2 - total / 2 for left, w in zip(lefts, widths, strict=True)]

    ref = coll.new_movie(
        name="reference", filepath=clip["path"], channel=1, frame_start=1, fit_method="ORIGINAL"
    )
    ref.transform.scale_x = ref.transform.scale_y = height / clip["height"]
    ref.transform.offset_x = centres[0]
    compat.set_strip_duration(ref, min(compat.strip_duration(ref), n))
    takes = []
    for k, (job_dir, job) in enumerate(zip(dirs, jobs, strict=True)):
        engine = engine_label(job["settings"].get("engine") or "wan-animate")  # older jobs: Wan2.2
        files = [job_dir / f"frame_{i + 1:06d}.png" for i in range(job["frame_count"])]
        take = _image_strip(coll, f"{engine}: {job['name']}", files, 2 + k, 1)
        take.transform.scale_x = take.transform.scale_y = height / job["settings"]["height"]
        take.transform.offset_x = centres[k + 1]
        label = labels[k] if labels else engine
        text = compat.new_text_strip(coll, f"label {k + 1}", label, 2 + len(jobs) + k, 1, n)
        # Text is placed in canvas fractions: centred over its take, near the bottom.
        text.location = ((lefts[k + 1] + widths[k + 1] / 2) / total, 0.08)
        text.font_size = max(12, height // 10)
        takes.append(str(job_dir))
    scene["wan_animate_jobs"] = takes
    return scene
