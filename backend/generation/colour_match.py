"""Colour matching between windows (numpy only).

Each window after the first re-generates its first frames from the previous window's last
ones; the difference between the two over that overlap is the colour drift the model added,
and each window's colours are matched to the previous window's through it.
"""

from __future__ import annotations

import numpy as np

# A window whose colours would need more than this gain to match is not "drift" but a real
# change (a cut, a light switched on): matching it fully would do more harm than good.
MAX_GAIN = 1.5
# Below this correlation the overlap frames are not a re-generation of the previous tail (the
# model did not follow its conditioning there), so their statistics say nothing about drift.
MIN_AGREEMENT = 0.6


def channel_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of frames shaped (..., C)."""
    flat = frames.reshape(-1, frames.shape[-1]).astype(np.float64)
    return flat.mean(axis=0), flat.std(axis=0)


def colour_transfer(
    target: tuple[np.ndarray, np.ndarray], source: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and offset mapping ``source`` statistics onto ``target`` ones.

    The overlap frames of a window show the same moment as the previous window's tail, so
    any difference in their statistics is drift; the same gain/offset applied to the whole
    window removes it without touching what changes inside the window.
    """
    t_mean, t_std = target
    s_mean, s_std = source
    gain = np.where(s_std > 1e-6, t_std / np.maximum(s_std, 1e-6), 1.0)
    gain = np.clip(gain, 1.0 / MAX_GAIN, MAX_GAIN)
    offset = t_mean - gain * s_mean
    return gain, offset


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the brightness of two equally shaped frame stacks (..., C): 1 for the same
    picture whatever its gain and offset, near 0 for unrelated pictures."""
    la, lb = a.astype(np.float64).mean(axis=-1).ravel(), b.astype(np.float64).mean(axis=-1).ravel()
    la, lb = la - la.mean(), lb - lb.mean()
    denom = np.sqrt((la * la).sum() * (lb * lb).sum())
    return float((la * lb).sum() / denom) if denom > 1e-12 else 0.0


def match_colours(
    previous_tail: np.ndarray, overlap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Gain and offset that bring a window back to the previous one, and how well the overlap
    agreed; None when the overlap does not show the same picture (nothing to match against)."""
    score = agreement(previous_tail, overlap)
    if score < MIN_AGREEMENT:
        return None
    gain, offset = colour_transfer(channel_stats(previous_tail), channel_stats(overlap))
    return gain, offset, score


def drift(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of the per-channel means of two frame stacks, in 0-255 units
    when the frames are in [0, 1]."""
    return float(np.abs(channel_stats(a)[0] - channel_stats(b)[0]).mean() * 255.0)
