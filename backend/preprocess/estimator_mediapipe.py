"""Whole-body pose and face landmarks from mediapipe's bundled Holistic models
(offline, CPU), mapped onto COCO-WholeBody's 133 points.

Mapping notes (what mediapipe lacks and how it is derived):
- body: COCO points 0-16 map 1:1 to mediapipe Pose landmarks.
- feet: mediapipe has one toe point (foot_index) per foot, so COCO's big toe and
  small toe both take it; the heel maps 1:1.
- face: the 68 iBUG landmarks are taken from the 468-point face mesh by a fixed
  index table; they only place the face crop.
- hands: mediapipe's 21 hand points are in OpenPose order already.
Hands and face carry no per-point confidence in mediapipe: found means 1.0.
"""

from __future__ import annotations

import numpy as np

from .pose_format import FACE_SLICE, LEFT_HAND_SLICE, NUM_WHOLEBODY, RIGHT_HAND_SLICE

# COCO-WholeBody body/foot index -> mediapipe Pose landmark index.
_COCO_FROM_MP_POSE = {
    0: 0, 1: 2, 2: 5, 3: 7, 4: 8, 5: 11, 6: 12, 7: 13, 8: 14, 9: 15, 10: 16,
    11: 23, 12: 24, 13: 25, 14: 26, 15: 27, 16: 28,
    17: 31, 18: 31, 19: 29, 20: 32, 21: 32, 22: 30,
}  # fmt: skip
# iBUG-68 landmark -> mediapipe face-mesh vertex.
_IBUG68_FROM_MESH = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip
assert len(_IBUG68_FROM_MESH) == 68


class MediapipeEstimator:
    """Stateful per clip: Holistic tracks the performer from frame to frame."""

    name = "mediapipe-holistic"

    def __init__(self, static_images: bool = False) -> None:
        try:
            from mediapipe.python.solutions import holistic
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "mediapipe is not installed in the backend environment. "
                "Run `python -m backend setup` (or the Set up backend button) again."
            ) from exc
        # Offline only model_complexity=1 is bundled in the wheel (0 and 2 download).
        self._holistic = holistic.Holistic(
            static_image_mode=static_images,
            model_complexity=1,
            smooth_landmarks=True,
            refine_face_landmarks=False,
        )

    def close(self) -> None:
        self._holistic.close()

    def __enter__(self) -> MediapipeEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def estimate(self, rgb: np.ndarray) -> np.ndarray:
        """One RGB frame -> (133, 3) keypoints in pixels; all-zero when nobody is found."""
        h, w = rgb.shape[:2]
        res = self._holistic.process(np.ascontiguousarray(rgb))
        out = np.zeros((NUM_WHOLEBODY, 3), dtype=np.float64)
        if res.pose_landmarks is not None:
            lm = res.pose_landmarks.landmark
            for coco, mp in _COCO_FROM_MP_POSE.items():
                p = lm[mp]
                out[coco] = (p.x * w, p.y * h, _in_frame(p.x, p.y) * float(p.visibility))
        if res.face_landmarks is not None:
            lm = res.face_landmarks.landmark
            face = [(lm[i].x * w, lm[i].y * h, _in_frame(lm[i].x, lm[i].y)) for i in _IBUG68_FROM_MESH]
            out[FACE_SLICE] = face
        for sl, hand in (
            (LEFT_HAND_SLICE, res.left_hand_landmarks),
            (RIGHT_HAND_SLICE, res.right_hand_landmarks),
        ):
            if hand is not None:
                out[sl] = [(p.x * w, p.y * h, _in_frame(p.x, p.y)) for p in hand.landmark]
        return out


def _in_frame(x: float, y: float) -> float:
    return 1.0 if 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 else 0.0
