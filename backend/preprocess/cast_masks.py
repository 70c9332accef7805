"""Replace masks of a cast: where two performers' masks overlap in a frame, one pass alone may
regenerate those pixels, or the later pass would paint over the nearer performer the earlier
pass just made (or leave a hole the farther one's character shows through)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def nearest_first(bottoms: Sequence[float | None]) -> list[int]:
    """Cast rows from the nearest performer to the farthest: on a floor seen from the camera the
    lower a person's box ends in the frame, the nearer they stand. Rows absent from the frame
    (None) come last; equal bottoms keep the artist's order."""
    return sorted(
        range(len(bottoms)),
        key=lambda i: (bottoms[i] is None, -(bottoms[i] or 0.0), i),
    )


def arbitrate(masks: Sequence[np.ndarray], bottoms: Sequence[float | None]) -> tuple[list[np.ndarray], bool]:
    """One frame's masks (uint8, 255 = regenerate), one per cast row, made disjoint: each pixel
    goes to the nearest performer whose mask holds it. Returns the masks and whether any two
    overlapped."""
    taken = np.zeros(masks[0].shape, bool)
    out: list[np.ndarray] = [np.zeros_like(m) for m in masks]
    overlap = False
    for i in nearest_first(bottoms):
        mine = masks[i] > 0
        overlap = overlap or bool((mine & taken).any())
        out[i][mine & ~taken] = 255
        taken |= mine
    return out, overlap


def frame_ranges(frames: Sequence[int]) -> str:
    """Clip frames as the artist reads them: 1-based, runs joined ("3-7, 12")."""
    runs: list[list[int]] = []
    for f in sorted(set(frames)):
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in runs)
