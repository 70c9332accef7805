"""Gathering the artist's inputs from the scene: a character still rendered from
the active camera, and the reference clip (a file or the active movie strip)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bpy

from ..core.strip_timing import shown_range
from . import compat
from .folders import user_dir


class InputError(ValueError):
    """Bad input from the scene; the message says what to do."""


@contextmanager
def _overridden(obj, values: dict[str, Any]) -> Iterator[None]:
    saved = {k: getattr(obj, k) for k in values}
    try:
        for k, v in values.items():
            setattr(obj, k, v)
        yield
    finally:
        for k, v in saved.items():
            setattr(obj, k, v)


@contextmanager
def camera_render(scene, **render_values: Any) -> Iterator[None]:
    """Render settings for a render of the camera's view made for the model, restored after:
    opaque RGB PNGs (the model reads opaque frames), and not the Sequencer's strips (the
    reference clip on the timeline would otherwise be what renders). ``render_values``: more
    ``scene.render`` settings (file path, engine, size)."""
    render = scene.render
    with (
        _overridden(render, {"film_transparent": False, "use_sequencer": False, **render_values}),
        _overridden(render.image_settings, {"file_format": "PNG", "color_mode": "RGB"}),
    ):
        yield


def render_character_still(scene, out_dir: Path, stem: str = "character") -> Path:
    if scene.camera is None:
        raise InputError("The scene has no active camera. Add a camera and make it active (Ctrl+Numpad 0).")
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    while (target := out_dir / f"{stem}_{n:03d}.png").exists():
        n += 1
    with camera_render(scene, filepath=str(target)):
        bpy.ops.render.render(write_still=True, scene=scene.name)
    if not target.is_file():
        raise InputError(f"Rendering the character still failed; nothing was written to {target}.")
    return target


def reference_from_strip(scene) -> tuple[Path, int, int]:
    """(movie file or folder of frames, start frame on the timeline, channel) of the active
    movie or image strip. An image strip's frames are written as Blender shows them."""
    editor = scene.sequence_editor
    strip = editor.active_strip if editor else None
    if strip is None or strip.type not in {"MOVIE", "IMAGE"}:
        raise InputError("No movie or image strip is active in the Sequencer. Select one, or choose a file.")
    if strip.type == "IMAGE":
        path = display_referred_frames(scene, strip, _new_folder(user_dir("strip_frames"), strip.name))
    else:
        path = Path(bpy.path.abspath(strip.filepath))
    return path, int(strip.frame_start), int(strip.channel)


def _new_folder(parent: Path, name: str) -> Path:
    """A folder of its own for each job's frames: a queued job may still be reading the last."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "strip"
    n = 0
    while (folder := parent / f"{stem}_{n:03d}").exists():
        n += 1
    return folder


def display_referred_frames(scene, strip, out_dir: Path) -> Path:
    """An image strip's frames as 8-bit PNGs the way Blender shows them: through the strip's
    input colour space and the scene's view transform, look, exposure and display. Linear EXR
    and 16-bit frames are not display images; reading their numbers as sRGB would clip the
    highlights and darken the rest, so Blender's own colour management converts them."""
    folder = Path(bpy.path.abspath(strip.directory))
    files = [folder / el.filename for el in strip.elements]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InputError(
            f"The strip '{strip.name}' names frames that are not on disk: {', '.join(missing[:3])}."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = scene.render.image_settings
    saved = (settings.file_format, settings.color_mode, settings.color_depth)
    try:
        settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGB", "8"
        for n, f in enumerate(files):
            img = bpy.data.images.load(str(f), check_existing=False)
            try:
                img.colorspace_settings.name = strip.colorspace_settings.name
                # "Save as render": the scene's view transform applied, as the Sequencer shows it.
                img.save_render(str(out_dir / f"frame_{n:05d}.png"), scene=scene)
            finally:
                bpy.data.images.remove(img)
    finally:
        settings.file_format, settings.color_mode, settings.color_depth = saved
    return out_dir


def strip_clip_settings(strip) -> dict[str, Any]:
    """The job settings that make the backend read what a movie strip shows in this Blender:
    the trimmed and retimed range, at the movie's rate (the strip's ``fps``, also a
    variable-rate movie's nominal rate, at which the backend counts its frames as Blender
    does), rotated as this Blender shows it."""
    shown = shown_range(
        int(strip.frame_start),
        compat.strip_start(strip),
        compat.strip_end(strip),
        compat.movie_length(strip),
        compat.retiming_key_frames(strip),
        compat.RETIMING_KEYS_END_EXCLUSIVE,
    )
    # The result keeps the movie's rate and spans the shown content at the strip's speed,
    # so it lines up with the strip frame for frame.
    return {
        "output_fps": strip.fps,
        "clip_start": shown.first,
        "clip_frames": shown.count,
        "clip_speed": shown.speed,
        "apply_rotation": compat.MOVIE_ROTATION_SHOWN,
    }
