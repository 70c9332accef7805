"""Keypoint tracks over time: jitter removed, fast motion followed, short gaps bridged."""

from __future__ import annotations

import numpy as np

from backend.preprocess.keypoint_filter import bridge_gaps, clean_tracks, smooth

FPS, SIZE = 30.0, 1920


def _track(xs, ys, conf=None) -> list[np.ndarray]:
    conf = np.ones(len(xs)) if conf is None else np.asarray(conf, dtype=float)
    return [np.array([[x, y, c]]) for x, y, c in zip(xs, ys, conf, strict=True)]


def test_a_still_point_stops_shaking():
    rng = np.random.default_rng(0)
    xs = 900 + rng.normal(0, 3, 120)
    ys = 500 + rng.normal(0, 3, 120)
    out = np.array([f[0, :2] for f in smooth(_track(xs, ys), FPS, SIZE)])
    raw_jitter = np.std(np.diff(xs))
    assert np.std(np.diff(out[20:, 0])) < 0.35 * raw_jitter


def test_a_fast_swing_is_followed_without_trailing():
    t = np.arange(60)
    xs = 200 + 25.0 * t  # 750 px/s: a fast arm swing in a 1080p shot
    out = np.array([f[0, 0] for f in smooth(_track(xs, np.full(60, 500.0)), FPS, SIZE)])
    lag = np.abs(out[10:] - xs[10:]).mean()
    moving_average_lag = 25.0 * 2  # a centred 5-frame average lags 2 frames behind the end
    assert lag < 0.25 * moving_average_lag


def test_short_gaps_are_bridged_and_long_ones_left_missing():
    xs = np.linspace(0, 100, 30)
    conf = np.ones(30)
    conf[5:8] = 0.0  # 3 frames lost
    conf[15:27] = 0.0  # 12 frames lost
    out = bridge_gaps(_track(xs, xs, conf))
    got = np.array([f[0] for f in out])
    assert np.allclose(got[5:8, 0], xs[5:8]) and (got[5:8, 2] >= 0.5).all()
    assert (got[15:27, 2] == 0.0).all()


def test_missing_values_never_become_nan():
    frames = _track([np.nan, 10, 20, np.inf], [0, 1, 2, 3], [0, 1, 1, 0])
    out = clean_tracks(frames, FPS, 640, 480)
    assert all(np.isfinite(f).all() for f in out)
