"""Gathering the artist's inputs from the scene: a character still rendered from
the active camera, and the reference clip (a file or the active movie strip)."""

from __future__ import annotations

from pathlib import Path

import bpy


class InputError(ValueError):
    """Bad input from the scene; the message says what to do."""


def render_character_still(scene, out_dir: Path, stem: str = "character") -> Path:
    if scene.camera is None:
        raise InputError("The scene has no active camera. Add a camera and make it active (Ctrl+Numpad 0).")
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    while (target := out_dir / f"{stem}_{n:03d}.png").exists():
        n += 1
    render = scene.render
    saved = (
        render.filepath,
        render.film_transparent,
        render.image_settings.file_format,
        render.image_settings.color_mode,
    )
    try:
        # The model needs an opaque character image.
        render.film_transparent = False
        render.image_settings.file_format = "PNG"
        render.image_settings.color_mode = "RGB"
        render.filepath = str(target)
        bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        render.filepath, render.film_transparent = saved[0], saved[1]
        render.image_settings.file_format, render.image_settings.color_mode = saved[2], saved[3]
    if not target.is_file():
        raise InputError(f"Rendering the character still failed; nothing was written to {target}.")
    return target


def reference_from_strip(scene) -> tuple[Path, int, int]:
    """(movie file, start frame on the timeline, channel) of the active movie strip."""
    editor = scene.sequence_editor
    strip = editor.active_strip if editor else None
    if strip is None or strip.type != "MOVIE":
        raise InputError("No movie strip is active in the Sequencer. Select a movie strip, or choose a file.")
    path = Path(bpy.path.abspath(strip.filepath))
    return path, int(strip.frame_start), int(strip.channel)
