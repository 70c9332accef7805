"""Retargeting (animate mode): the performer's motion on the character's proportions, by the
official Wan-Animate preprocessing's rule.

A child with short legs driven by a tall dancer's skeleton gets stretched limbs; the model
draws what the skeleton says. The official rule, restated (the model's authors tuned their
results with it):

- The character's pose is estimated on the character image as the official sees it: resized
  to the output's area at the image's aspect (sides floored to 16; pose_format.resize_by_area).
  The retargeted skeleton is drawn on a canvas of that size, whose size sets the stroke width
  (the official output's size), and the drawing is then fitted into the output with padding.
- Both figures are brought to one height (nose to the ankles' mean, else to the hips', when
  those points are confident in both; else by image area), then each of the 19 bones takes the
  ratio character length / performer length, measured once: on the clip's first frame and the
  character image, whatever their confidences. A bone missing from either takes the mean of
  the two shoulder ratios. Left and right of a limb both take the larger ratio; the eye and
  ear ratios are averaged.
- Every frame, each bone keeps the performer's direction and takes its length times the
  ratio, rebuilt outwards from the neck; a foot is at most half its shin.
- The figure is placed where the character stands in its image: with whole bodies in both
  (ankles and hips seen at 0.4 and inside the frame) the first frame's hip centre goes over
  the character's and the lower ankle onto the character's lower ankle-toe midpoint;
  otherwise the first frame's neck goes onto the character's. The same shift holds for every
  frame, so later frames keep their walks, jumps and crouches.
- Hands (points seen at 0.4) keep their shape, scaled by the shoulder ratio and moved with
  their wrists; a hand whose root is nearer the other wrist hangs from that one. The hand at
  the right wrist is drawn first (where hands overlap, the left one shows).

The arithmetic follows the official's order of float operations (points normalised by their
image, lengths as square roots by power, bones rebuilt by angle), so that the drawn frames are
the official's pixel for pixel (tests/test_official_retarget.py). Where this rule differs from
the official code: a point with confidence 0 counts as not given (no bone is measured or
rebuilt through it), the character must show the neck and both shoulders (seen at 0.4) or the
pose is not retargeted, and the ratios come from the first frame that shows the performer's neck
and shoulders (the official takes frame 0 whatever it shows).

Pure numpy. Keypoints: (133, 3) COCO-WholeBody, x and y in pixels; a point with confidence 0
is one the estimator did not give (the official estimator always gives every point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..protocol import BODY_SRC_A, BODY_SRC_B, LEFT_HAND_SLICE, RIGHT_HAND_SLICE
from .pose_format import draw_on_canvas, resize_by_area, wholebody_to_body20

# The 19 bones (parent, child) of the 20 drawn body points, in the drawing's order, which
# has every parent before its children: the neck (1) is the root.
BONES = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
         (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (13, 18), (10, 19))  # fmt: skip
SHOULDERS = (0, 1)  # bone indices
SAME_RATIO = ((0, 1), (2, 4), (3, 5), (6, 9), (7, 10), (8, 11), (17, 18))  # left/right: the larger
AVERAGED = ((13, 15), (14, 16))  # nose-eye, eye-ear: the mean
FOOT_CAP = ((18, 8), (17, 11))  # (foot bone, its shin bone)
MAX_FOOT_TO_SHIN = 0.5
THRESHOLD = 0.4  # whole-body check and hand points
HEIGHT_CONFIDENCE = 0.5  # the points a figure's height is measured between
NOSE, NECK, R_WRIST, L_WRIST, R_HIP, R_ANKLE, L_HIP, L_ANKLE, L_TOE, R_TOE = 0, 1, 4, 7, 8, 10, 11, 13, 18, 19


@dataclass(frozen=True)
class CharacterPose:
    """The character's keypoints on the canvas they were estimated on (and the pose is drawn on)."""

    keypoints: np.ndarray  # (133, 3) in canvas pixels
    width: int
    height: int


def character_canvas(image: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """The character image as the official preprocessing resizes it for an ``out_w`` x ``out_h``
    output (its resize_by_area): the character's pose is estimated on it and drawn at its size."""
    return resize_by_area(image, out_w, out_h)


def _normalised_body(kps: np.ndarray, width: int, height: int) -> np.ndarray:
    """(20, 3): the body points of a (133, 3) set normalised by its image, as the official's metas
    hold them."""
    n = np.array(kps, dtype=np.float64, copy=True)
    n[:, 0] /= width
    n[:, 1] /= height
    return (n[list(BODY_SRC_A)] + n[list(BODY_SRC_B)]) / 2


def _normalised_hand(kps: np.ndarray, part: slice, width: int, height: int) -> np.ndarray:
    """(21, 3): a hand normalised by its image the way the official's retargeting reads it
    (normalised, scaled back to pixels, normalised again)."""
    n = np.array(kps[part], dtype=np.float64, copy=True)
    n[:, 0] = n[:, 0] / width * width / width
    n[:, 1] = n[:, 1] / height * height / height
    return n


def _dist(ax, ay, bx, by):
    return ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5


@dataclass(frozen=True)
class Retargeting:
    ratios: np.ndarray  # (19,) per BONES: character / performer length at one body height
    scale: float  # performer pixels per character pixel at that height
    shift: np.ndarray  # (2,) subtracted from the rebuilt skeleton before it is scaled down
    canvas: tuple[int, int]  # (width, height) the pose is drawn at
    clip_size: tuple[int, int]
    placed_by: str  # "feet" or "neck"

    @property
    def hand_ratio(self) -> float:
        return max(self.ratios[0], self.ratios[1]) / self.scale

    def ratio_by_bone_end(self) -> dict[int, float]:
        return {child: float(self.ratios[i]) for i, (_p, child) in enumerate(BONES)}

    def apply(self, kps: np.ndarray) -> np.ndarray:
        """(62, 3) points in canvas pixels: the 20 body points, then the hand at the left wrist and
        the hand at the right wrist (drawn right first: ``draw``)."""
        (w, h), (cw, ch) = self.clip_size, self.canvas
        kps = np.asarray(kps, dtype=np.float64)
        body = _normalised_body(kps, w, h)
        body[:, 0] *= w
        body[:, 1] *= h
        new = _rebuild(body, self.ratios, cap_feet=True)
        new = (new - self.shift) / self.scale
        out = body.copy()
        out[:, :2] = new / (cw, ch) * (cw, ch)
        right = _normalised_hand(kps, RIGHT_HAND_SLICE, w, h)
        left = _normalised_hand(kps, LEFT_HAND_SLICE, w, h)
        r, lft = self._scaled(right), self._scaled(left)
        # What moves each scaled hand onto a retargeted wrist: the wrist's own move, and when the
        # hand's root is seen, the gap between that root and the body's wrist as well.
        move_r = new[R_WRIST] - body[R_WRIST, :2]
        move_l = new[L_WRIST] - body[L_WRIST, :2]
        root_r = r[0, :2] if right[0, 2] >= THRESHOLD else np.array([-1.0, -1.0])
        root_l = lft[0, :2] if left[0, 2] >= THRESHOLD else np.array([-1.0, -1.0])
        if right[0, 2] >= THRESHOLD:
            move_r = move_r + np.array((body[R_WRIST, 0] - root_r[0] * w, body[R_WRIST, 1] - root_r[1] * h))
        if left[0, 2] >= THRESHOLD:
            move_l = move_l + np.array((body[L_WRIST, 0] - root_l[0] * w, body[L_WRIST, 1] - root_l[1] * h))
        # Which wrist the right hand hangs from: the one nearer its root (a root not seen stands
        # at minus the clip's size, as the official's "-1" point does).
        to_right = _dist(body[R_WRIST, 0], body[R_WRIST, 1], root_r[0] * w, root_r[1] * h)
        to_left = _dist(body[L_WRIST, 0], body[L_WRIST, 1], root_r[0] * w, root_r[1] * h)
        if to_right > to_left:
            at_left, at_right = self._placed(r, move_l), self._placed(lft, move_r)
        else:
            at_left, at_right = self._placed(lft, move_l), self._placed(r, move_r)
        return np.concatenate([out, at_left, at_right])

    def _scaled(self, hand: np.ndarray) -> np.ndarray:
        """A normalised hand scaled about its root by the hand ratio; points seen under 0.4 dropped."""
        ratio = self.hand_ratio
        out = np.zeros_like(hand)
        d = hand[0, :2] * (ratio - 1)
        seen = hand[:, 2] >= THRESHOLD
        out[seen, :2] = hand[seen, :2] * ratio - d
        out[seen, 2] = hand[seen, 2]
        return out

    def _placed(self, hand: np.ndarray, move: np.ndarray) -> np.ndarray:
        """A scaled hand in canvas pixels, moved by ``move`` and truncated as the official does."""
        w, h = self.clip_size
        out = np.zeros_like(hand)
        seen = hand[:, 2] > 0
        out[seen, 0] = np.trunc(hand[seen, 0] * w + move[0])
        out[seen, 1] = np.trunc(hand[seen, 1] * h + move[1])
        out[seen, 2] = hand[seen, 2]
        return out

    def draw(self, kps: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
        """The retargeted frame: drawn on the character's canvas, then fitted into the output."""
        return draw_on_canvas(self.apply(kps), self.canvas, out_w, out_h, right_hand_first=True)


def _lengths_angles(body: np.ndarray) -> tuple[list, list]:
    """Per bone, its length and its angle (degrees) as the official measures them."""
    lengths, angles = [], []
    for p, c in BONES:
        dy, dx = body[p, 1] - body[c, 1], body[p, 0] - body[c, 0]
        lengths.append((dy**2 + dx**2) ** 0.5)
        angles.append(math.degrees(math.atan2(dy, dx)))
    return lengths, angles


def _rebuild(body: np.ndarray, ratios: np.ndarray, cap_feet: bool) -> np.ndarray:
    """(20, 2): each bone of ``body`` (pixels) at its length times its ratio and its own angle,
    outwards from the neck. A bone with an end the estimator did not give (confidence 0) is not
    moved (its child keeps its place)."""
    given = body[:, 2] > 0
    lengths, angles = _lengths_angles(body)
    length = [n * r for n, r in zip(lengths, ratios, strict=True)]
    if cap_feet:
        for foot, shin in FOOT_CAP:
            if length[foot] > length[shin] * MAX_FOOT_TO_SHIN:
                length[foot] = length[shin] * MAX_FOOT_TO_SHIN
    new = body[:, :2].copy()
    for i, (p, c) in enumerate(BONES):
        if not (given[p] and given[c]):
            continue
        a = math.radians(angles[i])
        new[c] = (new[p, 0] - length[i] * math.cos(a), new[p, 1] - length[i] * math.sin(a))
    return new


def _body_kind(body: np.ndarray) -> int:
    """2: whole body (ankles and hips), 1: down to the hips, 0: less; points (normalised by their
    image) seen at 0.4 and not below the frame."""

    def ok(i: int) -> bool:
        return bool(body[i, 1] <= 1 and body[i, 2] >= THRESHOLD)

    if ok(R_HIP) and ok(L_HIP):
        return 2 if ok(R_ANKLE) and ok(L_ANKLE) else 1
    return 0


def _scale(src: np.ndarray, src_size: tuple[int, int], dst: np.ndarray, dst_size: tuple[int, int]) -> float:
    """Performer pixels per character pixel: the ratio of their heights, nose to the ankles'
    mean (else to the hips') where both show those points confidently; else of image sizes.
    ``src``, ``dst``: normalised body points."""
    for a, b in ((R_ANKLE, L_ANKLE), (R_HIP, L_HIP)):
        pts = (NOSE, a, b)
        if all(src[i, 2] > HEIGHT_CONFIDENCE and dst[i, 2] > HEIGHT_CONFIDENCE for i in pts):
            src_h = src_size[1] * abs((src[a, 1] + src[b, 1]) / 2 - src[NOSE, 1])
            dst_h = dst_size[1] * abs((dst[a, 1] + dst[b, 1]) / 2 - dst[NOSE, 1])
            if src_h > 0 and dst_h > 0:
                return float(1.0 * src_h / dst_h)
    return float(np.sqrt(src_size[1] * src_size[0]) / np.sqrt(dst_size[1] * dst_size[0]))


def _bone_lengths(body: np.ndarray, width: int, height: int) -> np.ndarray:
    """(19,) lengths in pixels of a ``width`` x ``height`` image of normalised body points; NaN
    where an end was not given."""
    out = np.full(len(BONES), np.nan)
    for i, (p, c) in enumerate(BONES):
        if body[p, 2] > 0 and body[c, 2] > 0:
            x1, x2 = body[p, 0] * float(width), body[c, 0] * float(width)
            y1, y2 = body[p, 1] * float(height), body[c, 1] * float(height)
            out[i] = ((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5
    return out


def measured_frame(frames: list[np.ndarray]) -> np.ndarray:
    """The frame the ratios and the placement are taken from: the first, as the official
    takes it, unless the performer is not in it yet (walking in); then the first that has
    their neck and shoulders."""
    for k in frames:
        if (wholebody_to_body20(k)[[NECK, 2, 5], 2] > 0).all():
            return k
    return frames[0]


def plan_retarget(
    first: np.ndarray, clip_w: int, clip_h: int, character: CharacterPose
) -> Retargeting | None:
    """The retargeting of a clip whose first model frame has the (133, 3) keypoints ``first``
    (clip pixels; see ``measured_frame``), or None when the character image or that frame does
    not show the shoulders the rule needs (the character's seen at 0.4)."""
    cw, ch = character.width, character.height
    src = _normalised_body(first, clip_w, clip_h)
    dst = _normalised_body(character.keypoints, cw, ch)
    if any(dst[i, 2] < THRESHOLD for i in (NECK, 2, 5)):
        return None
    scale = _scale(src, (clip_w, clip_h), dst, (cw, ch))
    # The character measured at the performer's height; the official truncates the scaled
    # image size, and the points follow it.
    dw, dh = int(cw * scale), int(ch * scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = 1.0 * _bone_lengths(dst, dw, dh) / _bone_lengths(src, clip_w, clip_h)
    ratios[~np.isfinite(ratios)] = np.nan
    if np.isnan(ratios[list(SHOULDERS)]).any():
        return None
    ratios[np.isnan(ratios)] = (ratios[SHOULDERS[0]] + ratios[SHOULDERS[1]]) / 2
    for a, b in SAME_RATIO:
        ratios[a] = ratios[b] = max(ratios[a], ratios[b])
    for a, b in AVERAGED:
        ratios[a] = ratios[b] = (ratios[a] + ratios[b]) / 2

    src_px = src.copy()
    src_px[:, 0] *= clip_w
    src_px[:, 1] *= clip_h
    rebuilt = _rebuild(src_px, ratios, cap_feet=False)
    whole = min(_body_kind(dst), _body_kind(src)) == 2
    if whole:
        ground = max(dst[R_ANKLE, 1], dst[L_ANKLE, 1]) * dh
        if dst[R_TOE, 2] > 0 and dst[L_TOE, 2] > 0:  # the foot's middle, when the toes are given
            right_mid = (dst[R_ANKLE, 1] + dst[R_TOE, 1]) / 2
            left_mid = (dst[L_ANKLE, 1] + dst[L_TOE, 1]) / 2
            ground = max(left_mid, right_mid) * dh
        shift = np.array(
            [
                (rebuilt[R_HIP, 0] + rebuilt[L_HIP, 0]) / 2 - (dst[R_HIP, 0] + dst[L_HIP, 0]) * dw / 2,
                max(rebuilt[R_ANKLE, 1], rebuilt[L_ANKLE, 1]) - ground,
            ]
        )
    else:
        shift = np.array([rebuilt[NECK, 0] - dst[NECK, 0] * dw, rebuilt[NECK, 1] - dst[NECK, 1] * dh])
    return Retargeting(ratios, scale, shift, (cw, ch), (clip_w, clip_h), "feet" if whole else "neck")
