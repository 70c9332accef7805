"""The official shaping of a replace mask (Wan2.2 preprocessing, ``get_mask_body_img`` and
``get_aug_mask`` with its command line's defaults): the performer's mask dilated 3 times with a
7x7 kernel, then every cell of a w_len x h_len grid over its bounding box that it touches filled;
1 x 1 by default, so the model regenerates the box around the performer. With no dilation
(``iterations`` 0) the official leaves the mask as it is. Applied to the clip frame resized to
the official size (the output's area at the clip's aspect), where the official makes its masks.

Whatever segments the performer (SAM2 or the mediapipe fallback), the mask the model reads has
this shape: it is what the official pipeline feeds it."""

from __future__ import annotations

import cv2
import numpy as np

DILATE_KERNEL = 7
DILATE_ITERATIONS = 3
GRID_W = GRID_H = 1


def official_shape(
    mask: np.ndarray,
    iterations: int = DILATE_ITERATIONS,
    kernel: int = DILATE_KERNEL,
    w_len: int = GRID_W,
    h_len: int = GRID_H,
) -> np.ndarray:
    """Binary mask (nonzero = performer) -> dilated, then every cell of a w_len x h_len grid over
    its bounding box that it touches filled. uint8 0/255."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if iterations <= 0:
        return m * 255
    m = cv2.dilate(m, np.ones((kernel, kernel), np.uint8), iterations=iterations)
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return m * 255
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    # As the official grid: cells start at the box's minimum and stop before its maximum.
    step_w, step_h = max(1, (x1 - x0) // w_len), max(1, (y1 - y0) // h_len)
    out = m.copy()
    for cx in range(x0, x1, step_w):
        ex = min(cx + step_w, x1)
        for cy in range(y0, y1, step_h):
            ey = min(cy + step_h, y1)
            if m[cy:ey, cx:ex].any():
                out[cy:ey, cx:ex] = 1
    return out * 255
