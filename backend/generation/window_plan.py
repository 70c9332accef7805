"""How a clip is cut into model windows (numpy-free arithmetic).

Wan-Animate generates ``segment`` frames at a time; every window after the first re-generates
its first ``overlap`` frames from the previous window's last ones, so a clip of ``n`` frames
needs ``ceil((n - overlap) / (segment - overlap))`` windows and is padded up to fill the last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # first padded input frame this window covers
    end: int  # one past its last
    keep_from: int  # frames of this window before this one repeat the previous window's tail


def plan_windows(n_frames: int, segment: int, overlap: int) -> tuple[list[Window], int]:
    """The windows over a clip of ``n_frames`` and the padded length they cover."""
    if n_frames <= overlap:
        raise ValueError(f"a clip needs more than {overlap} frames for an overlap of {overlap}")
    step = segment - overlap
    count = max(1, math.ceil((n_frames - overlap) / step))
    windows = [Window(i, i * step, i * step + segment, 0 if i == 0 else overlap) for i in range(count)]
    return windows, windows[-1].end


def bounce_index(i: int, n: int) -> int:
    """Which of ``n`` frames pads position ``i``: the clip plays forward, then backward, and so on
    (0 1 2 3 2 1 0 1 ...), so the padding never jumps."""
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    j = i % period
    return j if j < n else period - j


def count_windows(n_frames: int, segment: int, overlap: int) -> int:
    return len(plan_windows(max(n_frames, overlap + 1), segment, overlap)[0])
