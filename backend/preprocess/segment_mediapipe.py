"""Replace mode's performer mask: mediapipe's bundled selfie-segmentation model
(offline, CPU) as the embedded default, then the official treatment of the mask:
dilated and coarsened to a grid, so the model regenerates a blocky region around
the performer rather than a tight silhouette. White = regenerate."""

from __future__ import annotations

import cv2
import numpy as np

GRID = 16  # pixels per coarse cell at output resolution


class MediapipeSegmenter:
    name = "mediapipe-selfie-segmentation"

    def __init__(self) -> None:
        from mediapipe.python.solutions import selfie_segmentation

        self._seg = selfie_segmentation.SelfieSegmentation(model_selection=0)

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """Performer probability (H, W) float32 in [0, 1]."""
        res = self._seg.process(np.ascontiguousarray(rgb))
        if res.segmentation_mask is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return res.segmentation_mask.astype(np.float32)

    def close(self) -> None:
        self._seg.close()


def coarse_mask(prob: np.ndarray, threshold: float = 0.5, grid: int = GRID) -> np.ndarray:
    """Binary performer mask -> dilated -> every grid cell it touches filled. uint8 0/255."""
    m = (prob >= threshold).astype(np.uint8)
    k = max(3, int(round(min(m.shape) * 0.02)) | 1)
    m = cv2.dilate(m, np.ones((k, k), np.uint8))
    h, w = m.shape
    gh, gw = -(-h // grid), -(-w // grid)
    padded = np.zeros((gh * grid, gw * grid), np.uint8)
    padded[:h, :w] = m
    cells = padded.reshape(gh, grid, gw, grid).max(axis=(1, 3))
    return (np.kron(cells, np.ones((grid, grid), np.uint8))[:h, :w] * 255).astype(np.uint8)
