"""Putting a job's frames on the timeline as an image-sequence strip."""

from __future__ import annotations

from pathlib import Path

from . import compat

MAX_CHANNEL = 128


def _occupied(editor, channel: int, start: int, end: int, ignore=None) -> bool:
    for s in compat.all_strips(editor):
        if s is ignore or s.channel != channel:
            continue
        if compat.strip_start(s) < end and start < compat.strip_end(s):
            return True
    return False


def free_channel(editor, start: int, end: int, above: int = 0) -> int:
    for ch in range(above + 1, MAX_CHANNEL + 1):
        if not _occupied(editor, ch, start, end):
            return ch
    raise RuntimeError("No free Sequencer channel for the result strip; free one and import again.")


def import_frames(scene, frames_dir: Path, name: str, frame_start: int, above_channel: int = 0):
    """One image strip holding every frame_*.png of ``frames_dir``, on the first
    free channel above ``above_channel`` over its whole range."""
    frames = sorted(Path(frames_dir).glob("frame_*.png"))
    if not frames:
        raise RuntimeError(f"No frames found in {frames_dir}; the job produced nothing to import.")
    editor = scene.sequence_editor or scene.sequence_editor_create()
    end = frame_start + len(frames)
    channel = free_channel(editor, frame_start, end, above_channel)
    strip = compat.strips(editor).new_image(
        name=name, filepath=str(frames[0]), channel=channel, frame_start=frame_start, fit_method="FIT"
    )
    strip.directory = str(frames_dir) + ("/" if not str(frames_dir).endswith(("/", "\\")) else "")
    # new_image made the first element; the rest are names relative to strip.directory.
    strip.elements[0].filename = frames[0].name
    for f in frames[1:]:
        strip.elements.append(f.name)
    compat.set_strip_duration(strip, len(frames))
    strip["wan_animate_result"] = str(frames_dir)
    return strip
