"""Retargeting (animate mode): the performer's motion on the character's proportions, by the
official Wan-Animate preprocessing's rule.

A child with short legs driven by a tall dancer's skeleton gets stretched limbs; the model
draws what the skeleton says. The official rule, restated (the model's authors tuned their
results with it):

- The character's pose is estimated on the character image as the official sees it: fitted
  with padding into a canvas of the output's area at the image's aspect (sides floored to 16).
  The retargeted skeleton is drawn on that canvas, whose size sets the stroke width, and the
  drawing is then fitted into the output with padding like every other frame.
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
  their wrists.

Pure numpy. Keypoints: (133, 3) COCO-WholeBody, x and y in pixels; a point with confidence 0
is one the estimator did not give (the official estimator always gives every point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..protocol import LEFT_HAND_SLICE, RIGHT_HAND_SLICE
from .pose_format import draw_on_canvas, official_canvas, padding_resize, wholebody_to_body20

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
    """The character image as the official preprocessing fits it for an ``out_w`` x ``out_h``
    output: padded into the canvas of the output's area at the image's aspect."""
    import cv2

    h, w = image.shape[:2]
    cw, ch = official_canvas(w, h, out_w, out_h)
    shrink = cw * ch < w * h
    return padding_resize(image, cw, ch, cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


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
        """(62, 3) points in canvas pixels: the 20 body points, then the left and right hands."""
        kps = np.asarray(kps, dtype=np.float64)
        body = wholebody_to_body20(kps)
        rebuilt = _rebuild(body, self.ratios, cap_feet=True)
        out = body.copy()
        out[:, :2] = (rebuilt - self.shift) / self.scale
        right, left = kps[RIGHT_HAND_SLICE], kps[LEFT_HAND_SLICE]
        shift_r = self._hand_shift(body, out, R_WRIST, right)
        shift_l = self._hand_shift(body, out, L_WRIST, left)
        # Which wrist the right hand hangs from: the one nearer its root (a root not seen
        # stands at minus the clip's size, as the official's "-1" point does).
        root = right[0, :2] if right[0, 2] >= THRESHOLD else -np.asarray(self.clip_size, dtype=np.float64)
        if np.hypot(*(body[R_WRIST, :2] - root)) > np.hypot(*(body[L_WRIST, :2] - root)):
            shift_r, shift_l = shift_l, shift_r
        return np.concatenate([out, self._hand(left, shift_l), self._hand(right, shift_r)])

    def _hand_shift(self, body: np.ndarray, out: np.ndarray, wrist: int, hand: np.ndarray) -> np.ndarray:
        """What moves a scaled hand onto its retargeted wrist: the wrist's own move, and when
        the hand's root is seen, the gap between that root and the body's wrist as well."""
        move = out[wrist, :2] - body[wrist, :2]
        if hand[0, 2] >= THRESHOLD:
            move = move + body[wrist, :2] - hand[0, :2]
        return move

    def _hand(self, hand: np.ndarray, shift: np.ndarray) -> np.ndarray:
        root = hand[0, :2]
        out = np.zeros_like(hand)
        seen = hand[:, 2] >= THRESHOLD
        out[seen, :2] = np.trunc(root + (hand[seen, :2] - root) * self.hand_ratio + shift)
        out[seen, 2] = hand[seen, 2]
        return out

    def draw(self, kps: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
        """The retargeted frame: drawn on the character's canvas, then fitted into the output."""
        return draw_on_canvas(self.apply(kps), self.canvas, out_w, out_h)


def _rebuild(body: np.ndarray, ratios: np.ndarray, cap_feet: bool) -> np.ndarray:
    """(20, 2): each bone of ``body`` at its length times its ratio, outwards from the neck.
    A bone with an end the estimator did not give is not moved (its child keeps its place)."""
    given = body[:, 2] > 0
    vec = np.array([body[c, :2] - body[p, :2] for p, c in BONES])
    length = np.hypot(vec[:, 0], vec[:, 1]) * ratios
    if cap_feet:
        for foot, shin in FOOT_CAP:
            length[foot] = min(length[foot], length[shin] * MAX_FOOT_TO_SHIN)
    new = body[:, :2].copy()
    for i, (p, c) in enumerate(BONES):
        if not (given[p] and given[c]):
            continue
        norm = float(np.hypot(*vec[i]))
        new[c] = new[p] + (vec[i] * (length[i] / norm) if norm > 0 else 0.0)
    return new


def _body_kind(body: np.ndarray, height: float) -> int:
    """2: whole body (ankles and hips), 1: down to the hips, 0: less; points seen at 0.4 and
    not below the frame."""

    def ok(i: int) -> bool:
        return bool(body[i, 2] >= THRESHOLD and body[i, 1] <= height)

    if ok(R_HIP) and ok(L_HIP):
        return 2 if ok(R_ANKLE) and ok(L_ANKLE) else 1
    return 0


def _scale(src: np.ndarray, src_size: tuple[int, int], dst: np.ndarray, dst_size: tuple[int, int]) -> float:
    """Performer pixels per character pixel: the ratio of their heights, nose to the ankles'
    mean (else to the hips') where both show those points confidently; else of image sizes."""
    for a, b in ((R_ANKLE, L_ANKLE), (R_HIP, L_HIP)):
        pts = (NOSE, a, b)
        if all(src[i, 2] > HEIGHT_CONFIDENCE and dst[i, 2] > HEIGHT_CONFIDENCE for i in pts):
            src_h = abs((src[a, 1] + src[b, 1]) / 2 - src[NOSE, 1])
            dst_h = abs((dst[a, 1] + dst[b, 1]) / 2 - dst[NOSE, 1])
            if src_h > 0 and dst_h > 0:
                return src_h / dst_h
    return float(np.sqrt(src_size[0] * src_size[1]) / np.sqrt(dst_size[0] * dst_size[1]))


def _bone_lengths(body: np.ndarray) -> np.ndarray:
    """(19,) lengths; NaN where an end was not given."""
    out = np.full(len(BONES), np.nan)
    for i, (p, c) in enumerate(BONES):
        if body[p, 2] > 0 and body[c, 2] > 0:
            out[i] = float(np.hypot(*(body[c, :2] - body[p, :2])))
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
    src = wholebody_to_body20(first)
    dst = wholebody_to_body20(character.keypoints)
    if any(dst[i, 2] < THRESHOLD for i in (NECK, 2, 5)):
        return None
    cw, ch = character.width, character.height
    scale = _scale(src, (clip_w, clip_h), dst, (cw, ch))
    # The character measured at the performer's height; the official truncates the scaled
    # image size, and the points follow it.
    dst_xy = dst[:, :2] * (np.array([int(cw * scale), int(ch * scale)], dtype=np.float64) / (cw, ch))
    src_len = _bone_lengths(src)
    dst_len = _bone_lengths(np.column_stack([dst_xy, dst[:, 2]]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = dst_len / src_len
    ratios[~np.isfinite(ratios)] = np.nan
    if np.isnan(ratios[list(SHOULDERS)]).any():
        return None
    ratios[np.isnan(ratios)] = ratios[list(SHOULDERS)].mean()
    for a, b in SAME_RATIO:
        ratios[a] = ratios[b] = max(ratios[a], ratios[b])
    for a, b in AVERAGED:
        ratios[a] = ratios[b] = (ratios[a] + ratios[b]) / 2

    rebuilt = _rebuild(src, ratios, cap_feet=False)
    whole = min(_body_kind(dst, ch), _body_kind(src, clip_h)) == 2
    if whole:
        ground = [dst_xy[R_ANKLE, 1], dst_xy[L_ANKLE, 1]]
        if dst[R_TOE, 2] > 0 and dst[L_TOE, 2] > 0:  # the foot's middle, when the toes are given
            ground = [
                (dst_xy[R_ANKLE, 1] + dst_xy[R_TOE, 1]) / 2,
                (dst_xy[L_ANKLE, 1] + dst_xy[L_TOE, 1]) / 2,
            ]
        shift = np.array(
            [
                (rebuilt[R_HIP, 0] + rebuilt[L_HIP, 0]) / 2 - (dst_xy[R_HIP, 0] + dst_xy[L_HIP, 0]) / 2,
                max(rebuilt[R_ANKLE, 1], rebuilt[L_ANKLE, 1]) - max(ground),
            ]
        )
    else:
        shift = rebuilt[NECK] - dst_xy[NECK]
    return Retargeting(ratios, scale, shift, (cw, ch), (clip_w, clip_h), "feet" if whole else "neck")
