"""Every Blender-version difference (4.2 LTS to 5.0) the add-on meets, in one place."""

from __future__ import annotations

import bpy


def strips(editor):
    """All strips of a sequence editor: ``strips`` since 4.4, ``sequences`` before.
    An empty collection is falsy, so this tests for the attribute, not its value."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips(editor):
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def object_fcurves(obj):
    """The F-curves animating ``obj``: ``Action.fcurves`` up to 4.x, the action's
    channelbag for the object's slot in the layered actions of 4.4+ (5.0 removed
    ``Action.fcurves``)."""
    anim = obj.animation_data
    if anim is None or anim.action is None:
        return []
    action = anim.action
    if hasattr(action, "fcurves") and not hasattr(action, "slots"):
        return action.fcurves
    from bpy_extras import anim_utils

    bag = anim_utils.action_get_channelbag_for_slot(action, anim.action_slot)
    return bag.fcurves if bag is not None else []


def retiming_key_frames(strip) -> list[int]:
    """Timeline frames of a strip's retiming keys (4.0+; the same in 5.0). Reading is safe;
    adding keys from Python to a strip without retiming data crashes 5.0, so we never do."""
    return [int(k.timeline_frame) for k in getattr(strip, "retiming_keys", ())]


# Measured by rendering strips of movies flagged as rotated (tests/test_strip_display.py):
# 4.2 shows them as stored, on their side; 4.5 and 5.0 apply the flag (and report the upright
# size in the strip's element). 4.3 and 4.4 are not tested hosts and were not measured.
MOVIE_ROTATION_SHOWN = bpy.app.version >= (4, 5, 0)

# Variable-rate movies need no entry here: 4.2, 4.5 and 5.0 all count their frames at the
# stream's nominal rate (the strip's ``fps``), showing at each the last frame whose timestamp
# has been reached, which the backend's clip reader does for every movie.

# 5.0 places a retimed strip's end key one past its last frame and reports the retimed
# length as frame_duration; 4.x puts the key on the last frame and keeps the movie's length.
RETIMING_KEYS_END_EXCLUSIVE = bpy.app.version >= (5, 0, 0)


def movie_length(strip) -> int:
    """The movie's own frame count behind a movie strip.

    Once a strip has retiming keys, 4.5 and 5.0 report the retimed length as ``frame_duration``
    (a 120-frame movie at 250 %: 49), so the movie itself is asked (4.2 reports the movie's)."""
    if not len(strip.retiming_keys):
        return int(strip.frame_duration)
    path = bpy.path.abspath(strip.filepath)
    existing = {c.name for c in bpy.data.movieclips}
    clip = bpy.data.movieclips.load(path, check_existing=True)
    try:
        return int(clip.frame_duration)
    finally:
        if clip.name not in existing:
            bpy.data.movieclips.remove(clip)


def new_text_strip(coll, name: str, text: str, channel: int, start: int, duration: int):
    """A text strip: 5.0 takes the effect's length, 4.x its end frame."""
    extent = {"length": duration} if bpy.app.version >= (5, 0, 0) else {"frame_end": start + duration}
    strip = coll.new_effect(name=name, type="TEXT", channel=channel, frame_start=start, **extent)
    strip.text = text
    return strip


# A strip's shown range: ``left_handle``, ``right_handle`` (one past the last frame shown) and
# ``duration`` since 5.1, which deprecates ``frame_final_start``/``_end``/``_duration`` (their
# removal is announced for 6.0); the same values under either name.
def strip_start(strip) -> int:
    """The first timeline frame the strip shows."""
    return int(strip.left_handle if hasattr(strip, "left_handle") else strip.frame_final_start)


def strip_end(strip) -> int:
    """One past the last timeline frame the strip shows."""
    return int(strip.right_handle if hasattr(strip, "right_handle") else strip.frame_final_end)


def strip_duration(strip) -> int:
    """How many timeline frames the strip shows."""
    return strip_end(strip) - strip_start(strip)


def set_strip_duration(strip, frames: int) -> None:
    """Show ``frames`` frames from the strip's first shown frame (moves its right handle: 5.1.0
    has ``duration`` read-only)."""
    if hasattr(strip, "right_handle"):
        strip.right_handle = strip.left_handle + int(frames)
    else:
        strip.frame_final_duration = int(frames)


def set_strip_range(strip, start: int, end: int) -> None:
    """Move the strip's handles so it shows timeline frames ``start`` to ``end - 1``."""
    if hasattr(strip, "left_handle"):
        strip.left_handle, strip.right_handle = int(start), int(end)
    else:
        strip.frame_final_start, strip.frame_final_end = int(start), int(end)
