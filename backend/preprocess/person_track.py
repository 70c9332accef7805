"""Following one performer through a clip from per-frame person boxes.

The detector finds everyone in every frame; picking the largest box per frame would jump
between people as they cross or change size. Here the performer is chosen once (the largest
person in the first frame with anyone in it, or the one nearest a point the user picked) and
then followed: each frame takes the box that best overlaps where the performer is predicted
to be (constant velocity from the last two sightings). Where none overlaps (the detector
boxed them differently, or a small person moved more than their width), a box of about their
size near the prediction whose clothes look like theirs is taken. A frame with no match keeps
the prediction for up to ``max_gap`` frames; then the track waits for the performer to be seen
again: a person of their size who looks like them, anywhere in the frame (they may come back
from behind someone, or from beyond the frame's edge), or, for a caller that gives no looks,
near where they were lost. Pure numpy: boxes are (x1, y1, x2, y2, score) rows; looks are
colour histograms (performer_pick.box_look) compared by ``look_distance``.
"""

from __future__ import annotations

import numpy as np

MIN_IOU = 0.2  # below this a box is someone else (or nobody)
MAX_GAP = 15  # frames the prediction stands in for a lost performer (0.5 s at 30 fps)
# Looks (0 same clothes, 1 nothing in common; Bhattacharyya on hue-saturation histograms):
LOOK_OTHER = 0.55  # beyond this a box on the prediction holds someone else (who stepped in front)
LOOK_NEAR = 0.3  # a box near the prediction within this is the performer, boxed differently
LOOK_BACK = 0.3  # after a long absence, a box anywhere within this (and nearest) is them
LOOK_RATE = 0.1  # how fast the performer's remembered look follows their sightings


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overlap area of box ``a`` (4,) with each of boxes ``b`` (N, 4+)."""
    x1 = np.maximum(a[0], b[:, 0])
    y1 = np.maximum(a[1], b[:, 1])
    x2 = np.minimum(a[2], b[:, 2])
    y2 = np.minimum(a[3], b[:, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (4,) against boxes ``b`` (N, 4+)."""
    inter = intersection(a, b)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def box_under(boxes: np.ndarray, x: float, y: float) -> int | None:
    """The box the point is on (of nested boxes, the smallest: the one the point is really
    on), or None."""
    if not len(boxes):
        return None
    inside = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])
    if not inside.any():
        return None
    idx = np.flatnonzero(inside)
    return int(idx[np.argmin(_area(boxes[idx]))])


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _ahead(box: np.ndarray, velocity: np.ndarray, frames: int) -> np.ndarray:
    """``box`` moved ``frames`` frames on at the centre's ``velocity``, its size kept: the
    performer's box shrinks as they walk behind someone, and carrying that shrinking on turns
    the prediction into nothing in a few frames."""
    step = np.array([velocity[0] + velocity[2], velocity[1] + velocity[3]]) / 2
    # A sprinter covers about a twentieth of their height a frame; faster is the box changing
    # shape (someone cut by the edge, half hidden), which must not fling the prediction away.
    top = 0.05 * max(box[3] - box[1], 1.0)
    speed = float(np.hypot(*step))
    if speed > top:
        step *= top / speed
    step *= frames
    return box + np.array([step[0], step[1], step[0], step[1]])


def _centre_distance(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return np.hypot(
        (boxes[:, 0] + boxes[:, 2] - box[0] - box[2]) / 2, (boxes[:, 1] + boxes[:, 3] - box[1] - box[3]) / 2
    )


def look_distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 for the same colours, 1 for none in common (Bhattacharyya distance of histograms
    that sum to 1)."""
    bc = float(np.sqrt(np.clip(a, 0, None) * np.clip(b, 0, None)).sum())
    return float(np.sqrt(max(0.0, 1.0 - bc)))


class PersonTracker:
    def __init__(self, pick: tuple[float, float] | None = None, max_gap: int = MAX_GAP) -> None:
        """``pick``: a point (pixels) on the chosen performer in the first frame they appear."""
        self.pick = pick
        self.max_gap = max_gap
        self.look: np.ndarray | None = None  # the performer's clothes, as last seen
        self._last: np.ndarray | None = None  # last box seen
        self._velocity = np.zeros(4)
        self._missed = 0
        # The sighting before this frame and the frames since, and this frame's box: what
        # ``recentre`` needs to turn the pose's evidence into a sighting.
        self._before: tuple[np.ndarray | None, int, np.ndarray] = (None, 1, np.zeros(4))
        self._current: np.ndarray | None = None
        self._frame = -1  # updates so far, less one
        self._seed: tuple[int, np.ndarray] | None = None

    def follow_from(self, frame: int, box: np.ndarray) -> None:
        """Follow the person in ``box`` (pixels) from the ``frame``-th update on, nobody before:
        the performer as found where the user picked them, traced back to where they appear."""
        self._seed = (int(frame), np.asarray(box, dtype=np.float64)[:4].copy())

    def _choose_first(self, boxes: np.ndarray) -> int | None:
        if self._seed is not None:
            # The seed box was found on this frame by the same detector: the best overlap is it.
            # None overlapping it: the performer is not found yet, and nobody else stands in.
            overlaps = iou(self._seed[1], boxes)
            best = int(np.argmax(overlaps))
            return best if overlaps[best] >= MIN_IOU else None
        if self.pick is None:
            return int(np.argmax(_area(boxes)))
        px, py = self.pick
        under = box_under(boxes, px, py)
        if under is not None:
            return under
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        return int(np.argmin(np.hypot(centres[:, 0] - px, centres[:, 1] - py)))

    def expected(self) -> np.ndarray | None:
        """Where the next update should find the performer: the prediction, or where they were
        last seen once lost; None before the first sighting. For a closer look there when the
        frame's boxes miss them."""
        if self._last is None:
            if self._seed is not None and self._frame + 1 >= self._seed[0]:
                return self._seed[1].copy()
            return None
        if self._missed > self.max_gap:
            return self._last.copy()
        return _ahead(self._last, self._velocity, self._missed + 1)

    def update(self, boxes: np.ndarray, looks: list[np.ndarray | None] | None = None) -> np.ndarray | None:
        """This frame's box for the performer (detected or predicted), or None. ``looks``: per
        box, its colours (or None); without them the track goes by position alone."""
        last = None if self._last is None else self._last.copy()
        self._before = (last, self._missed + 1, self._velocity.copy())
        self._frame += 1
        if self._seed is not None and self._last is None and self._frame < self._seed[0]:
            self._current = None  # before the performer's first sighting: nobody, not someone else
            return None
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
        looks = list(looks) if looks is not None and len(looks) == len(boxes) else [None] * len(boxes)
        chosen = self._update(boxes, looks)
        self._current = None if chosen is None else boxes[chosen] if isinstance(chosen, int) else chosen
        if isinstance(chosen, int) and looks[chosen] is not None:
            seen = looks[chosen]
            self.look = seen.copy() if self.look is None else (1 - LOOK_RATE) * self.look + LOOK_RATE * seen
        return self._current

    def _update(self, boxes: np.ndarray, looks: list) -> int | np.ndarray | None:
        """The index of the performer's box, a stand-in box (the prediction), or None."""
        if self._last is None:
            if len(boxes) == 0:
                return None
            first = self._choose_first(boxes)
            if first is None and self._seed is not None and self._frame == self._seed[0]:
                # The seed was found on this very frame (by a closer look than this frame's):
                # it stands for the performer's first sighting.
                self._last = self._seed[1].copy()
                return np.append(self._seed[1], 0.5)
            if first is None:
                return None
            self._last = boxes[first, :4].copy()
            return first
        if self._missed > self.max_gap:
            return self._reacquire(boxes, looks)
        predicted = _ahead(self._last, self._velocity, self._missed + 1)
        if len(boxes):
            overlaps = iou(predicted, boxes)
            if self.look is not None:
                unlike = np.array(
                    [lk is not None and look_distance(lk, self.look) > LOOK_OTHER for lk in looks]
                )
                overlaps[unlike] = 0.0
            best = int(np.argmax(overlaps))
            if overlaps[best] < MIN_IOU:
                best = self._near_alike(predicted, boxes, looks)
            if best is not None:
                box = boxes[best]
                self._velocity = (box[:4] - self._last) / (self._missed + 1)
                self._last = box[:4].copy()
                self._missed = 0
                return best
        return self._miss()

    def _near_alike(self, predicted: np.ndarray, boxes: np.ndarray, looks: list) -> int | None:
        """A box of about the performer's size within a body width (more after frames unseen)
        of the prediction, that looks like them; the nearest such."""
        if self.look is None:
            return None
        size = np.sqrt(_area(predicted[None])[0])
        ratio = np.sqrt(_area(boxes)) / max(size, 1e-9)
        reach = (predicted[2] - predicted[0]) * (1.0 + 0.2 * self._missed)
        dist = _centre_distance(predicted, boxes)
        alike = np.array([lk is not None and look_distance(lk, self.look) <= LOOK_NEAR for lk in looks])
        ok = (ratio > 0.7) & (ratio < 1.4) & (dist < reach) & alike
        if not ok.any():
            return None
        return int(np.flatnonzero(ok)[np.argmin(dist[ok])])

    def _miss(self) -> np.ndarray | None:
        """One more frame without the performer: the prediction stands in, up to ``max_gap``."""
        self._missed += 1
        if self._missed > self.max_gap:
            # Lost for good: stop guessing and wait for the performer near where they went.
            self._velocity = np.zeros(4)
            return None
        return np.append(_ahead(self._last, self._velocity, self._missed), 0.0)  # score 0: a stand-in

    @property
    def lost(self) -> bool:
        """Unseen for longer than the prediction may stand in."""
        return self._missed > self.max_gap

    @property
    def current(self) -> np.ndarray | None:
        """This frame's box, after ``recentre`` or ``reject``."""
        return self._current

    def recentre(self, cx: float) -> np.ndarray | None:
        """Slide this frame's box sideways so its centre is at ``cx``, the performer's body centre
        as the pose estimator found it, and count it as a sighting; returns the moved box.

        While two people overlap, a detector often returns one box between them, or none that
        fits: following the box would carry the track (and its velocity) over to the other
        person, while the pose follows one body through the overlap. A body found over a third of
        a box width from where the performer was heading (more after frames unseen) is someone
        else, the performer hidden behind them: the frame is rejected and None returned."""
        if self._current is None:
            return None
        last, gap, velocity = self._before
        if last is not None:
            heading = last + velocity * gap
            # The longer the performer went unseen, the less the heading is worth.
            reach = min(1.0, 0.35 + 0.1 * (gap - 1)) * (heading[2] - heading[0])
            if abs(cx - (heading[0] + heading[2]) / 2) > reach:
                self.reject()
                return None
        moved = self._current.copy()
        moved[[0, 2]] += cx - (moved[0] + moved[2]) / 2
        if last is not None:
            self._velocity = (moved[:4] - last) / gap
        self._last, self._missed = moved[:4].copy(), 0
        self._current = moved
        return moved

    def reject(self) -> None:
        """This frame's box holds someone else (the caller's evidence says so): count the frame
        as one where the performer was not seen."""
        last, gap, velocity = self._before
        if last is None:
            self._last, self._current = None, None
            return
        self._last, self._velocity, self._missed = last, velocity, gap - 1
        self._current = self._miss()

    def _reacquire(self, boxes: np.ndarray, looks: list) -> int | None:
        """After a long absence: of the people of about the performer's size, the one who looks
        most like them, anywhere (clearly like them: someone else dressed alike is taken only
        if nearer the last sighting too); with no looks to go by, the nearest within three body
        heights of the last sighting."""
        if not len(boxes):
            return None
        last = self._last
        size = np.sqrt(_area(last[None])[0])
        ratio = np.sqrt(_area(boxes)) / max(size, 1e-9)
        dist = _centre_distance(last, boxes)
        sized = (ratio > 0.5) & (ratio < 2.0)
        if self.look is not None and any(lk is not None for lk in looks):
            d = np.array([1.0 if lk is None else look_distance(lk, self.look) for lk in looks])
            ok = sized & (d <= LOOK_BACK)
            if not ok.any():
                return None
            # Nearest among those about as alike as the most alike.
            close = ok & (d <= d[ok].min() + 0.1)
            best = int(np.flatnonzero(close)[np.argmin(dist[close])])
        else:
            ok = sized & (dist < 3 * (last[3] - last[1]))
            if not ok.any():
                return None
            best = int(np.flatnonzero(ok)[np.argmin(dist[ok])])
        self._last = boxes[best, :4].copy()
        self._velocity = np.zeros(4)
        self._missed = 0
        return best
