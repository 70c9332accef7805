"""Window-by-window generation: saved windows, resume after a cancel, and colour matching at the
hand-off (the real pipeline, tiny random weights). That the windows are the official generate's
is tests/test_official_generate.py."""

from __future__ import annotations

import numpy as np
import pytest

from backend.generation.colour_match import (
    channel_stats,
    colour_transfer,
    drift,
    match_colours,
)
from backend.generation.window_plan import (
    bounce_index,
    plan_windows,
)


def test_plan_covers_the_clip_with_the_pipelines_padding():
    for n in range(2, 60):
        for seg, ov in ((5, 1), (9, 1), (13, 5), (17, 5)):
            if n <= ov:
                continue
            wins, padded = plan_windows(n, seg, ov)
            assert wins[0].start == 0 and padded >= n
            assert padded - n < seg - ov  # never a whole window of padding
            for a, b in zip(wins, wins[1:], strict=False):
                assert b.start == a.end - ov  # each window re-generates the previous tail
            kept = sum(w.end - w.start - w.keep_from for w in wins)
            assert kept == padded


def test_bounce_padding_plays_back_and_forth():
    assert [bounce_index(i, 5) for i in range(10)] == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1]
    assert [bounce_index(i, 2) for i in range(4)] == [0, 1, 0, 1]


def test_colour_transfer_maps_statistics():
    rng = np.random.default_rng(0)
    a = rng.random((4, 8, 8, 3))
    b = a * 0.8 + 0.1  # a darker, flatter copy: pure drift
    gain, offset = colour_transfer(channel_stats(a), channel_stats(b))
    fixed = b * gain + offset
    assert drift(fixed, a) < 0.01
    assert drift(b, a) > 1.0


@pytest.fixture(scope="module")
def pipe(tiny_model):
    import torch
    from diffusers import WanAnimatePipeline

    torch.set_num_threads(1)
    p = WanAnimatePipeline.from_pretrained(tiny_model)
    p.set_progress_bar_config(disable=True)
    return p


def _inputs(pipe, n: int, mode: str = "animate", colour_match: bool = False):
    from PIL import Image

    from backend.generation.window_loop import WindowInputs

    rng = np.random.default_rng(3)
    size = pipe.transformer.config.motion_encoder_size

    def frames(k: int, shape) -> list:
        return [Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)) for _ in range(k)]

    return WindowInputs(
        image=Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)),
        pose=frames(n, (32, 32, 3)),
        face=frames(n, (size, size, 3)),
        background=frames(n, (32, 32, 3)) if mode == "replace" else None,
        mask=[Image.fromarray(m) for m in rng.integers(0, 2, (n, 32, 32), dtype=np.uint8) * 255]
        if mode == "replace"
        else None,
        prompt="a person dances",
        width=32,
        height=32,
        segment=5,
        overlap=1,
        steps=2,
        mode=mode,
        guidance_scale=1.0,
        seed=7,
        colour_match=colour_match,
    )


def _run(pipe, inp, folder, on_step=None):
    import torch

    from backend.generation.window_loop import assemble, generate_windows
    from backend.generation.window_store import WindowStore

    store = WindowStore(folder, {"test": 1})
    with torch.inference_mode():
        plan, timings = generate_windows(pipe, inp, store, on_step or (lambda *a: None))
    return np.stack(assemble(store, plan, len(inp.pose))), timings, store


def test_cancelled_job_resumes_after_its_last_saved_window(pipe, tmp_path):
    inp = _inputs(pipe, 11)
    whole, _, _ = _run(pipe, inp, tmp_path / "whole")

    class Stop(Exception):
        pass

    def stop_in_window_3(window, windows, step, decoding):
        if window == 3:
            raise Stop

    with pytest.raises(Stop):
        _run(pipe, inp, tmp_path / "resumed", stop_in_window_3)
    seen = []
    resumed, timings, store = _run(pipe, inp, tmp_path / "resumed", lambda *a: seen.append(a[0]))
    assert timings.resumed_windows == 2
    assert set(seen) == {3}  # only the unfinished window ran again
    assert np.array_equal(resumed, whole)


def test_saved_windows_of_other_inputs_are_not_reused(pipe, tmp_path):
    from backend.generation.window_store import WindowStore

    inp = _inputs(pipe, 11)
    _run(pipe, inp, tmp_path / "w")
    store = WindowStore(tmp_path / "w", {"test": 2})  # different key, same folder
    assert store.finished(3) == 0


def test_colour_matching_leaves_windows_alone_when_the_overlap_was_not_followed(pipe, tmp_path):
    # Random weights ignore the conditioning: a window's first frame is not the previous tail,
    # so there is no drift to measure and matching must not make things worse.
    inp = _inputs(pipe, 11, colour_match=True)
    matched, timings, _ = _run(pipe, inp, tmp_path / "on")
    inp.colour_match = False
    raw, _, _ = _run(pipe, inp, tmp_path / "off")
    assert timings.colour_gains == [None, None]
    assert np.array_equal(matched, raw)


def test_colour_matching_removes_drift_that_builds_up_window_after_window(pipe, tmp_path, monkeypatch):
    """A stand-in for a model that follows its conditioning but drifts: the real VAE decodes,
    then its output is replaced by one still picture, a little flatter and brighter each window.
    (The stand-in drifts from the first window, not from what it was conditioned on, so the
    gains compound; four windows stay inside the largest gain matching will apply.)"""
    import torch

    rng = np.random.default_rng(5)
    still = torch.from_numpy(rng.uniform(-0.8, 0.8, (3, 1, 32, 32))).float()
    real_decode = pipe.vae.decode
    calls = [0]

    def drifting_decode(latents, return_dict=False):
        frames = real_decode(latents, return_dict=False)[0]
        k = calls[0]
        calls[0] += 1
        out = still.expand(-1, frames.shape[2], -1, -1).unsqueeze(0) * 0.9**k + 0.06 * k
        return (out.clamp(-1, 1),)

    monkeypatch.setattr(pipe.vae, "decode", drifting_decode)
    means = {}
    for on in (False, True):
        calls[0] = 0
        inp = _inputs(pipe, 17, colour_match=on)  # 4 windows
        frames, timings, _ = _run(pipe, inp, tmp_path / str(on))
        means[on] = [drift(frames[i : i + 4], frames[0:4]) for i in (1, 5, 9, 13)]
        if on:
            assert all(g is not None for g in timings.colour_gains)
    assert means[False][-1] > 15  # 0-255 levels: plainly visible
    assert max(means[True]) < 1.0
    assert means[False] == sorted(means[False])  # without matching it only gets worse


def test_match_colours_needs_the_same_picture():
    rng = np.random.default_rng(1)
    a = rng.random((1, 16, 16, 3))
    assert match_colours(a, a * 0.9 + 0.05) is not None
    assert match_colours(a, rng.random((1, 16, 16, 3))) is None
