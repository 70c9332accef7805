"""Person boxes from the people detector that ships inside OpenCV (HOG features with a linear
SVM trained on upright pedestrians): the embedded estimator's detector before ``people_pose``,
kept as the baseline that ``benchmarks/bench_people.py`` measures the pose detector against.

It sees upright whole bodies only: it misses people seen waist up, cut by the frame's edge or
seated, and costs more than the pose detector's tiles on 720p frames.
"""

from __future__ import annotations

import numpy as np

from .person_track import intersection

# Detections are looked for at this frame height: HOG's window is 128 px tall, so people
# down to about a fifth of the frame height are found, at a cost that does not grow with 4K.
WORK_HEIGHT = 640
# SVM margin below which a detection is mostly background clutter (poles, doorways).
MIN_MARGIN = 1.0


class PeopleDetector:
    def __init__(self, work_height: int = WORK_HEIGHT, min_margin: float = MIN_MARGIN) -> None:
        import cv2

        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.work_height = work_height
        self.min_margin = min_margin

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """(N, 5) boxes in frame pixels: x1, y1, x2, y2, score in (0, 1)."""
        import cv2

        h, w = rgb.shape[:2]
        scale = self.work_height / h
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale != 1.0:
            gray = cv2.resize(
                gray,
                (max(64, round(w * scale)), self.work_height),
                interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
            )
        if gray.shape[1] < 64:
            return np.zeros((0, 5))
        rects, margins = self._hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 5))
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        margins = np.asarray(margins, dtype=np.float64).reshape(-1)
        keep = margins >= self.min_margin
        rects, margins = rects[keep], margins[keep]
        sx, sy = w / gray.shape[1], h / gray.shape[0]
        boxes = np.stack(
            [
                rects[:, 0] * sx,
                rects[:, 1] * sy,
                (rects[:, 0] + rects[:, 2]) * sx,
                (rects[:, 1] + rects[:, 3]) * sy,
                1.0 / (1.0 + np.exp(-margins)),
            ],
            axis=1,
        )
        return _suppress(boxes)


def _suppress(boxes: np.ndarray, overlap: float = 0.5) -> np.ndarray:
    """HOG's own grouping leaves nested boxes on one person (a torso inside a body):
    keep the strongest and drop boxes mostly inside it."""
    order = np.argsort(-boxes[:, 4])
    kept: list[int] = []
    for i in order:
        b = boxes[i]
        area = (b[2] - b[0]) * (b[3] - b[1])
        if not kept or not (intersection(b, boxes[kept]) > overlap * area).any():
            kept.append(int(i))
    return boxes[sorted(kept)]
