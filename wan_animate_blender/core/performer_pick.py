"""The performer pick as the artist makes it: a click on a frame of the reference clip shown in
an Image Editor, turned into what the backend takes (a point as fractions of the frame, and
the frame, counted in the clip range the job reads). No bpy: the operator passes numbers in."""

from __future__ import annotations


def point_from_uv(u: float, v: float) -> tuple[float, float] | None:
    """An Image Editor's view coordinates (0..1 over the image, v upwards) -> (x, y) fractions
    from the left and from the top; None for a click beside the image."""
    if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
        return None
    return round(u, 4), round(1.0 - v, 4)


def movie_frame_shown(scene_frame: int, frame_start: int, frame_offset: int, length: int) -> int:
    """The movie frame (0-based) an image user shows at ``scene_frame``: Blender counts
    ``scene_frame - frame_start + 1 + frame_offset`` from 1, held at the movie's ends."""
    return min(max(scene_frame - frame_start + frame_offset, 0), max(length - 1, 0))


def frame_in_range(movie_frame: int, clip_start: int) -> int:
    """The pick's frame as the job counts it: from the first frame of the range it reads (a
    trimmed strip's first shown frame); ``in_range`` says whether the range shows it at all."""
    return max(0, int(movie_frame) - int(clip_start))


def in_range(movie_frame: int, clip_start: int, clip_frames: int) -> bool:
    """Whether the job's range (``clip_frames`` from ``clip_start``; 0: to the end) shows the frame."""
    return movie_frame >= clip_start and (clip_frames <= 0 or movie_frame < clip_start + clip_frames)


def describe(point: tuple[float, float], movie_frame: int) -> str:
    return f"{100 * point[0]:.0f}% across, {100 * point[1]:.0f}% down, movie frame {movie_frame + 1}"
