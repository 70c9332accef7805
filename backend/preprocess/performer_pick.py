"""Finding the performer before the long pass over the clip, so that a clip with nobody in it
or a pick on empty background fails in seconds with a message, not after minutes.

With a pick (a point the user clicked, on any frame of the clip): the people on that frame
are detected first; the pick must land on one of them. That person is then traced back to
the first frame they appear in, over the detector's boxes only, and the tracked pass starts
from there (PersonTracker.follow_from), so the skeleton follows the person clicked whichever
frame the click was on. Without a pick: a few frames spread over the clip (the first ones
first) are checked for anyone at all.

What was seen is kept (a small preview of each frame looked at, and its boxes) so a failure
can leave annotated frames for the artist, and a success a thumbnail of who is followed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .clip_reading import ClipError, ClipInfo, iter_frames_rgb
from .person_track import box_under

PROBE_FRAMES = 12  # frames looked at for anyone at all, before the long pass
# Frames the clip check surveys for everyone in view: each costs the detector's whole pyramid
# (about 0.2 s on a 720p frame, 2 cores), and the check is waited on before every Generate.
SURVEY_FRAMES = 8
PREVIEW_SIDE = 480  # longest side of the kept previews and the thumbnail

Progress = Callable[[int, int, str], None]


class NoPersonError(ClipError):
    """Nobody to follow in the clip. ``sightings``: what was looked at, for annotated frames;
    ``keypoints``: per model frame, what a full pass found (all too weak to use)."""

    def __init__(
        self, message: str, sightings: list[Sighting] | None = None, keypoints: list[np.ndarray] | None = None
    ) -> None:
        super().__init__(message)
        self.sightings = sightings or []
        self.keypoints = keypoints


class PickError(NoPersonError):
    """The user's pick does not land on a person: the message says what was found."""


@dataclass
class Sighting:
    model_frame: int
    clip_frame: int
    boxes: np.ndarray  # (N, 5) in clip pixels
    preview: np.ndarray  # the frame, downscaled to PREVIEW_SIDE
    scale: float  # preview pixels per clip pixel


@dataclass
class Performer:
    """Who the pass will follow, and what the look before it saw."""

    frame: int  # model frame the performer was chosen on (the picked frame, or the first seen)
    box: np.ndarray | None  # their box there (clip pixels); None: no detector to say
    seed_frame: int  # first model frame they are followed from
    picked: bool
    people: int  # people on the chosen frame
    sightings: list[Sighting] = field(default_factory=list)


def update_index(sources: list[int], model_frame: int) -> int:
    """The estimator's frame count at ``model_frame``: it sees each clip frame once, so model
    frames that repeat a clip frame (a clip under 30 fps) add none."""
    return len(set(sources[: model_frame + 1])) - 1


def model_frame_of(sources: list[int], clip_frame: int) -> int:
    """The first model frame showing ``clip_frame`` or a later one (the last if none does)."""
    for n, src in enumerate(sources):
        if src >= clip_frame:
            return n
    return len(sources) - 1


def read_frame(info: ClipInfo, index: int) -> np.ndarray:
    """One frame of the clip, or a ClipError saying the file ends before it."""
    for _i, rgb in iter_frames_rgb(info, [index]):
        return rgb
    raise ClipError(f"{info.path.name} ends before frame {index}; the file may be damaged.")


def _sighting(n: int, src: int, rgb: np.ndarray, boxes: np.ndarray) -> Sighting:
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, PREVIEW_SIDE / max(h, w))
    small = (
        rgb
        if scale == 1.0
        else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    )
    return Sighting(n, src, np.asarray(boxes, dtype=np.float64).reshape(-1, 5), small, scale)


def find_performer(
    info: ClipInfo,
    sources: list[int],
    estimator,
    pick: tuple[float, float] | None,
    pick_frame: int = 0,
    progress: Progress | None = None,
    looked: list[Sighting] | None = None,
    trace_back: bool = True,
) -> Performer | None:
    """Who to follow; raises PickError or NoPersonError (ClipError) in seconds when there is
    nobody to follow. None for estimators that cannot list people (no look-ahead then).
    ``looked``: a survey of the clip already made (the clip check's), used instead of looking again.
    ``trace_back``: carry a late pick back to the performer's first frame (the job does; the clip
    check, which shows the picked frame only, does not)."""
    if not hasattr(estimator, "people"):
        return None
    if pick is not None:
        return _follow_pick(info, sources, estimator, pick, pick_frame, progress, trace_back)
    sightings = looked if looked is not None else _look(info, sources, estimator, progress)
    for seen in sightings:
        if len(seen.boxes):
            areas = (seen.boxes[:, 2] - seen.boxes[:, 0]) * (seen.boxes[:, 3] - seen.boxes[:, 1])
            largest = int(np.argmax(areas))
            return Performer(seen.model_frame, seen.boxes[largest], 0, False, len(seen.boxes), sightings)
    raise NoPersonError(
        f"No person was found in the reference clip {info.path.name} (looked at {len(sightings)} frames spread "
        f"over it: {', '.join(str(s.clip_frame) for s in sightings)}). Use a clip that shows the performer's "
        "body clearly, head and shoulders at least.",
        sightings,
    )


def _look(info: ClipInfo, sources: list[int], estimator, progress: Progress | None) -> list[Sighting]:
    """Frames spread over the clip, the first ones first, until one shows anyone."""
    picks = _spread(len(sources), PROBE_FRAMES)
    sightings = []
    for i, (_src, rgb) in enumerate(iter_frames_rgb(info, [sources[n] for n in picks])):
        sightings.append(_sighting(picks[i], sources[picks[i]], rgb, estimator.people(rgb)))
        if progress:
            progress(i + 1, len(picks), "looking for the performer")
        if len(sightings[-1].boxes):
            break
    return sightings


def _spread(n: int, count: int) -> list[int]:
    """``count`` model frames spread evenly over ``n``, first and last included."""
    return sorted(set(np.linspace(0, n - 1, min(count, n)).round().astype(int).tolist()))


def survey(info: ClipInfo, sources: list[int], estimator, frames: int = SURVEY_FRAMES) -> list[Sighting]:
    """Everyone on ``frames`` frames spread over the clip, the first and last among them."""
    picks = _spread(len(sources), frames)
    return [
        _sighting(picks[i], sources[picks[i]], rgb, estimator.people(rgb))
        for i, (_src, rgb) in enumerate(iter_frames_rgb(info, [sources[n] for n in picks]))
    ]


def _follow_pick(
    info: ClipInfo,
    sources: list[int],
    estimator,
    pick: tuple[float, float],
    pick_frame: int,
    progress: Progress | None,
    trace_back: bool = True,
) -> Performer:
    if pick_frame >= info.frame_count:
        raise PickError(
            f"The performer was picked on frame {pick_frame} of the clip, which has {info.frame_count} frames "
            "in the range the job reads. Pick again on a frame of the clip."
        )
    p = model_frame_of(sources, pick_frame)
    rgb = read_frame(info, sources[p])
    h, w = rgb.shape[:2]
    x, y = pick[0] * w, pick[1] * h
    seen = _sighting(p, sources[p], rgb, estimator.people(rgb))
    chosen = box_under(seen.boxes, x, y)
    if chosen is None and hasattr(estimator, "person_at"):
        # The look over the whole frame can miss someone the artist sees (cut by the frame's
        # edge, small, half hidden): a closer look where they clicked.
        found = estimator.person_at(rgb, x, y)
        if found is not None:
            seen.boxes = np.concatenate([seen.boxes, np.asarray(found, dtype=np.float64).reshape(1, 5)])
            chosen = len(seen.boxes) - 1
    if chosen is None:
        where = (
            "nobody was found on that frame"
            if not len(seen.boxes)
            else f"{len(seen.boxes)} {'person was' if len(seen.boxes) == 1 else 'people were'} found there, "
            "at "
            + ", ".join(
                f"{100 * (b[0] + b[2]) / 2 / w:.0f}% across, {100 * (b[1] + b[3]) / 2 / h:.0f}% down"
                for b in seen.boxes
            )
        )
        raise PickError(
            f"The performer pick ({100 * pick[0]:.0f}% across, {100 * pick[1]:.0f}% down, on clip frame "
            f"{sources[p]}) is not on a person: {where}. Pick again with a click on the performer's body, "
            "on a frame where they are in full view, or clear the pick to follow the largest person.",
            [seen],
        )
    box = seen.boxes[chosen]
    seed_frame, seed_box = p, box
    if p > 0 and trace_back:
        # The first frame where the picked person is seen: the one whose clothes look like
        # theirs, clearly more than anyone else's. Tracking boxes back from the pick fails where
        # people overlap (one box for both); the look does not. Usually that is the first frame.
        want = box_look(rgb, box)
        for i, (_src, frame) in enumerate(iter_frames_rgb(info, sources[:p])):
            if progress:
                progress(i + 1, p, "finding the picked performer's first frame")
            found = _same_look(frame, estimator.people(frame), want)
            if found is not None:
                seed_frame, seed_box = i, found
                break
    estimator.follow_from(update_index(sources, seed_frame), seed_box)
    return Performer(p, box, seed_frame, True, len(seen.boxes), [seen])


def annotate(
    s: Sighting, chosen: np.ndarray | None = None, point: tuple[float, float] | None = None
) -> np.ndarray:
    """The preview with every detected person boxed (grey), the followed one green, the pick a cross."""
    import cv2

    img = np.ascontiguousarray(s.preview.copy())
    for b in s.boxes:
        cv2.rectangle(img, _pt(b[0], b[1], s.scale), _pt(b[2], b[3], s.scale), (160, 160, 160), 1)
    if chosen is not None:
        cv2.rectangle(
            img, _pt(chosen[0], chosen[1], s.scale), _pt(chosen[2], chosen[3], s.scale), (0, 220, 0), 2
        )
    if point is not None:
        h, w = img.shape[:2]
        cv2.drawMarker(
            img, (round(point[0] * w), round(point[1] * h)), (255, 40, 40), cv2.MARKER_CROSS, 14, 2
        )
    return img


def _pt(x: float, y: float, scale: float) -> tuple[int, int]:
    return round(float(x) * scale), round(float(y) * scale)


def write_annotated(folder: Path, sightings: list[Sighting], point: tuple[float, float] | None) -> list[str]:
    """What the look before the pass saw, one PNG per frame looked at; returns the file names."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for s in sightings[:PROBE_FRAMES]:
        name = f"looked_at_clip_frame_{s.clip_frame:06d}.png"
        Image.fromarray(annotate(s, None, point)).save(folder / name)
        names.append(name)
    return names


LOOK_SAME = 0.35  # colour distance (0 same, 1 nothing in common) within which it is the same person
LOOK_MARGIN = 0.2  # ... and by which it must be nearer than anyone else in the frame
LOOK_ALONE = 0.2  # within which a person alone in the frame is taken for the picked one


def colours(region: np.ndarray) -> np.ndarray | None:
    """Hue-saturation histogram of an RGB region: what someone's clothes look like, little
    changed by their pose or the light's strength."""
    import cv2

    if region.shape[0] < 2 or region.shape[1] < 2:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [18, 8], [0, 180, 0, 256]).astype(np.float32)
    return hist / max(float(hist.sum()), 1e-6)


def look_distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 for the same colours, 1 for none in common (Bhattacharyya)."""
    import cv2

    return float(cv2.compareHist(a.astype(np.float32), b.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


def box_look(rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The colours of the middle of a person box: the torso of someone standing, the chest of a
    close-up; clear of the background beside the arms."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    bw, bh = x2 - x1, y2 - y1
    cx0, cx1 = max(0, int(x1 + 0.3 * bw)), min(w, int(np.ceil(x1 + 0.7 * bw)))
    cy0, cy1 = max(0, int(y1 + 0.25 * bh)), min(h, int(np.ceil(y1 + 0.55 * bh)))
    return colours(rgb[cy0:cy1, cx0:cx1])


def _same_look(rgb: np.ndarray, boxes: np.ndarray, want: np.ndarray | None) -> np.ndarray | None:
    """The box whose look is clearly the wanted one, or None."""
    if want is None or not len(boxes):
        return None
    looks = [box_look(rgb, b) for b in boxes]
    d = np.array([1.0 if lk is None else look_distance(lk, want) for lk in looks])
    order = np.argsort(d)
    best = int(order[0])
    # Alone in the frame, nobody to be clearly nearer than: a closer likeness is asked instead.
    if d[best] > (LOOK_SAME if len(d) > 1 else LOOK_ALONE):
        return None
    if len(d) > 1 and d[order[1]] - d[best] < LOOK_MARGIN:
        return None
    return np.asarray(boxes[best], dtype=np.float64)


LOST_FRAMES = 15  # model frames (0.5 s) without the performer worth a warning
JUMP_SHARE = 0.6  # a move of more than this share of the body's height in one model frame is a jump
JUMP_PER_FRAME = 0.2  # ... plus this much per frame unseen in between


def track_warnings(keypoints: list[np.ndarray], sources: list[int], threshold: float) -> list[str]:
    """What an artist should know about the followed track: where the performer is lost for
    long, leaves for good, or jumps (most likely to someone else)."""
    from .pose_format import wholebody_to_body20

    centres: list[np.ndarray | None] = []
    heights: list[float] = []
    for k in keypoints:
        body = wholebody_to_body20(k)
        ok = body[:, 2] >= threshold
        if ok.sum() < 3:
            centres.append(None)
            heights.append(0.0)
            continue
        pts = body[ok, :2]
        centres.append(pts.mean(axis=0))
        heights.append(float(np.ptp(pts[:, 1])))
    out: list[str] = []
    n = len(centres)
    seen = [c is not None for c in centres]
    if not any(seen):
        return out
    first, last = seen.index(True), n - 1 - seen[::-1].index(True)
    if first >= LOST_FRAMES:
        out.append(f"the performer is first found at clip frame {sources[first]}: no skeleton before it")
    if n - 1 - last >= LOST_FRAMES:
        out.append(
            f"the performer is lost at clip frame {sources[last + 1]} and not found again: no skeleton after it"
        )
    run = 0
    for i in range(first, last + 1):
        if not seen[i]:
            run += 1
            continue
        if run >= LOST_FRAMES:
            out.append(
                f"the performer is lost from clip frame {sources[i - run]} to {sources[i - 1]} "
                f"({run / 30:.1f} s): no skeleton there"
            )
        run = 0
    jumps, prev = [], first
    for i in range(first + 1, last + 1):
        if centres[i] is None:
            continue
        gap = i - prev
        # A sprinter covers about a fifth of their height a frame: more is someone else.
        reach = (JUMP_SHARE + JUMP_PER_FRAME * (gap - 1)) * max(heights[i], heights[prev], 1.0)
        if np.hypot(*(centres[i] - centres[prev])) > reach:
            jumps.append(i)
        prev = i
    if jumps:
        shown = ", ".join(str(sources[i]) for i in jumps[:5]) + (" ..." if len(jumps) > 5 else "")
        out.append(
            f"the skeleton jumps at clip frame{'s' if len(jumps) > 1 else ''} {shown}: it may follow someone "
            "else there; check the pose frames, and pick the performer on a frame near it"
        )
    return out
