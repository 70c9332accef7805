"""Temporal clean-up of per-frame keypoints (numpy only): short detection gaps bridged,
jitter removed without lag on fast motion.

Keypoints are (N, 3) arrays per frame: x, y in clip pixels, confidence in [0, 1]. Frames
come at the model's rate. Smoothing uses a One-Euro filter (Casiez, Roussel and Vogel, CHI 2012): a
low-pass whose cut-off rises with speed, so a still hand stops shaking while a fast swing is
followed without trailing behind.
"""

from __future__ import annotations

import math

import numpy as np

from .pose_format import CONFIDENCE_THRESHOLD

MAX_GAP_FRAMES = 6  # ~0.2 s at 30 fps: longer gaps are a real absence, not a missed detection
MIN_CUTOFF_HZ = 1.5
BETA = 40.0  # per (frame-size unit per second): larger follows fast motion sooner
D_CUTOFF_HZ = 1.0


def bridge_gaps(frames: list[np.ndarray], max_gap: int = MAX_GAP_FRAMES) -> list[np.ndarray]:
    """Each point missing (below the confidence threshold) for at most ``max_gap`` frames
    between two frames where it was found is interpolated, with the lower confidence of the two
    ends. Longer gaps and gaps at the clip's ends stay missing."""
    if not frames:
        return frames
    kps = np.stack([np.asarray(f, dtype=np.float64) for f in frames])  # (T, N, 3)
    kps = np.nan_to_num(kps, nan=0.0, posinf=0.0, neginf=0.0)
    found = kps[:, :, 2] >= CONFIDENCE_THRESHOLD
    t_count = kps.shape[0]
    for j in range(kps.shape[1]):
        good = np.flatnonzero(found[:, j])
        for a, b in zip(good[:-1], good[1:], strict=True):
            gap = b - a - 1
            if 0 < gap <= max_gap:
                w = (np.arange(a + 1, b) - a) / (b - a)
                kps[a + 1 : b, j, 0] = kps[a, j, 0] + w * (kps[b, j, 0] - kps[a, j, 0])
                kps[a + 1 : b, j, 1] = kps[a, j, 1] + w * (kps[b, j, 1] - kps[a, j, 1])
                kps[a + 1 : b, j, 2] = min(kps[a, j, 2], kps[b, j, 2])
    return [kps[t] for t in range(t_count)]


def _alpha(cutoff_hz: float, fps: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau * fps)


def smooth(frames: list[np.ndarray], fps: float, scale: float) -> list[np.ndarray]:
    """One-Euro filter over each point's track; ``scale`` (the frame's larger side in pixels)
    makes the speed term independent of the clip's resolution. A point restarts its filter
    after every frame where it was not found, so a reappearing hand does not glide in."""
    if not frames:
        return frames
    kps = np.stack([np.asarray(f, dtype=np.float64) for f in frames])
    out = kps.copy()
    n = kps.shape[1]
    a_d = _alpha(D_CUTOFF_HZ, fps)
    prev = np.zeros((n, 2))
    deriv = np.zeros((n, 2))
    live = np.zeros(n, dtype=bool)
    for t in range(kps.shape[0]):
        pos = kps[t, :, :2] / scale
        found = kps[t, :, 2] >= CONFIDENCE_THRESHOLD
        d_raw = (pos - prev) * fps
        deriv = np.where(live[:, None], deriv + a_d * (d_raw - deriv), 0.0)
        speed = np.linalg.norm(deriv, axis=1)
        cutoff = MIN_CUTOFF_HZ + BETA * speed
        a = 1.0 / (1.0 + fps / (2 * math.pi * cutoff))
        filtered = np.where(live[:, None], prev + a[:, None] * (pos - prev), pos)
        filtered = np.where(found[:, None], filtered, pos)
        out[t, :, :2] = filtered * scale
        prev = filtered
        live = found
    return [out[t] for t in range(out.shape[0])]


def clean_tracks(frames: list[np.ndarray], fps: float, width: int, height: int) -> list[np.ndarray]:
    return smooth(bridge_gaps(frames), fps, float(max(width, height)))
