"""Retargeting (animate mode): the performer's motion on the character's proportions.

A child with short legs driven by a tall dancer's skeleton gets stretched limbs; the model
draws what the skeleton says. So each bone of the drawn 20-point body keeps the performer's
direction in every frame but takes the character's length, measured on the character image:
per bone, ratio = character length / performer length, both from the first frame where the
bone is seen (as the official preprocessing does, which assumes both start facing the
camera). The skeleton is rebuilt outwards from the neck, hands follow their wrists scaled like
the forearm, and the whole figure is moved so that its feet stand where the performer's stood
in the first frame (ground aligned). Pure numpy, in output-frame pixels.
"""

from __future__ import annotations

import numpy as np

from ..protocol import LEFT_HAND_SLICE, RIGHT_HAND_SLICE
from .pose_format import CONFIDENCE_THRESHOLD, wholebody_to_body20

# Body-20 tree (0-based, as drawn): parent of each point; the neck (1) is the root.
PARENT = {0: 1, 2: 1, 3: 2, 4: 3, 5: 1, 6: 5, 7: 6, 8: 1, 9: 8, 10: 9, 11: 1, 12: 11, 13: 12,
          14: 0, 15: 0, 16: 14, 17: 15, 18: 13, 19: 10}  # fmt: skip
ORDER = (0, 2, 5, 8, 11, 14, 15, 3, 6, 9, 12, 16, 17, 4, 7, 10, 13, 18, 19)  # parents first
FEET = (10, 13, 18, 19)  # ankles and toes
# Bones a character image must show for its proportions to be trusted.
KEY_BONES = (2, 5, 3, 6, 8, 11)  # shoulders, upper arms, hip links
FOREARM = {"left": 7, "right": 4}  # wrist points: their bone from the elbow scales the hand


def _seen(p: np.ndarray, q: np.ndarray) -> bool:
    return p[2] >= CONFIDENCE_THRESHOLD and q[2] >= CONFIDENCE_THRESHOLD


def bone_lengths(body: np.ndarray) -> dict[int, float]:
    """Length of each bone (keyed by its child point) that is seen in this frame."""
    return {
        c: float(np.hypot(*(body[c, :2] - body[p, :2]))) for c, p in PARENT.items() if _seen(body[c], body[p])
    }


def character_ratios(driver: list[np.ndarray], character: np.ndarray) -> dict[int, float] | None:
    """Per-bone length ratios, or None when the character image does not show enough of a body."""
    char_len = bone_lengths(wholebody_to_body20(character))
    if sum(b in char_len for b in KEY_BONES) < 3:
        return None
    first: dict[int, float] = {}
    for kps in driver:
        for bone, length in bone_lengths(wholebody_to_body20(kps)).items():
            if bone not in first and length > 1.0:
                first[bone] = length
        if len(first) == len(PARENT):
            break
    ratios = {b: char_len[b] / first[b] for b in first if b in char_len and char_len[b] > 1.0}
    if not ratios:
        return None
    # A bone the character image hides takes the typical ratio of the ones it shows.
    typical = float(np.median(list(ratios.values())))
    return {b: ratios.get(b, typical) for b in PARENT}


def retarget(driver: list[np.ndarray], ratios: dict[int, float]) -> list[np.ndarray]:
    """Per frame, (62, 3) pose points (20 body, then 21 left and 21 right hand) on the character's
    proportions. Points the performer's frame lacks stay missing."""
    out = []
    ground_shift = None
    for kps in driver:
        body = wholebody_to_body20(kps)
        new = body.copy()
        for c in ORDER:
            p = PARENT[c]
            if _seen(body[c], body[p]) and new[p, 2] >= CONFIDENCE_THRESHOLD:
                new[c, :2] = new[p, :2] + (body[c, :2] - body[p, :2]) * ratios[c]
            else:
                new[c, 2] = 0.0  # its bone cannot be placed: not drawn
        hands = []
        for side, sl in (("left", LEFT_HAND_SLICE), ("right", RIGHT_HAND_SLICE)):
            hand = np.asarray(kps, dtype=np.float64)[sl].copy()
            wrist = FOREARM[side]
            if new[wrist, 2] >= CONFIDENCE_THRESHOLD:
                anchor = hand[0, :2].copy()  # the hand's own wrist point
                hand[:, :2] = new[wrist, :2] + (hand[:, :2] - anchor) * ratios[wrist]
            else:
                hand[:, 2] = 0.0
            hands.append(hand)
        if ground_shift is None:
            # Fixed on the first frame, so later frames keep their jumps and crouches.
            ground_shift = _ground_shift(body, new) or 0.0
        new[:, 1] += ground_shift
        for hand in hands:
            hand[:, 1] += ground_shift
        out.append(np.concatenate([new, *hands]))
    return out


def _ground_shift(before: np.ndarray, after: np.ndarray) -> float | None:
    """The vertical move that puts the retargeted feet where the performer's feet were."""
    feet = [f for f in FEET if before[f, 2] >= CONFIDENCE_THRESHOLD and after[f, 2] >= CONFIDENCE_THRESHOLD]
    if not feet:
        return None  # no feet in the first frame (a close-up): the neck stays put instead
    return float(max(before[f, 1] for f in feet) - max(after[f, 1] for f in feet))
