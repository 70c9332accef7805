"""Frame-rate mapping, frame reading, window counting and output sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from backend.generation.window_plan import count_windows
from backend.preprocess.clip_reading import (
    iter_frames_rgb,
    model_frame_sources,
    output_frame_sources,
    probe_clip,
)
from wan_animate_blender.core.resolution import plan_output_size


@pytest.mark.parametrize("clip_fps, n, scene_fps", [(29.97, 120, 24), (24, 48, 30), (25, 100, 25)])
def test_output_at_the_scene_rate_lasts_as_long_as_the_clip(clip_fps, n, scene_fps):
    src = model_frame_sources(n, clip_fps)
    out = output_frame_sources(n, clip_fps, len(src), scene_fps)
    assert abs(len(out) / scene_fps - n / clip_fps) <= 0.5 / scene_fps
    assert out == sorted(out) and out[-1] <= len(src) - 1


@pytest.mark.parametrize("fps, n", [(24, 48), (25, 100), (29.97, 120), (30, 31), (60, 90), (23.976, 1)])
def test_model_rate_round_trip_keeps_length_and_timing(fps, n):
    src = model_frame_sources(n, fps)
    assert len(src) == max(1, int(n / fps * 30))  # the official count: truncated, not rounded
    assert src == sorted(src) and src[0] == 0 and src[-1] <= n - 1
    back = output_frame_sources(n, fps, len(src))
    assert len(back) == n  # one output frame per clip frame: the strip lines up with the clip
    for j, k in enumerate(back):
        # the generated frame shown at clip time j/fps was made at model time k/30: within half a model frame
        assert abs(k / 30 - j / fps) <= 0.5 / 30 + 1e-9 or k == len(src) - 1


def _numbered_clip(path, n, fps=24):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for i in range(n):
        w.write(np.full((48, 64, 3), i * 10, np.uint8))
    w.release()


def test_streamed_reading_returns_the_requested_frames(tmp_path):
    clip = tmp_path / "n.mp4"
    _numbered_clip(clip, 20)
    info = probe_clip(clip)
    assert (info.frame_count, info.width, info.height) == (20, 64, 48)
    assert abs(info.fps - 24) < 0.01
    picks = [0, 0, 3, 7, 7, 19]
    got = list(iter_frames_rgb(info, picks))
    assert [i for i, _ in got] == picks
    for i, frame in got:
        assert abs(float(frame.mean()) - i * 10) < 4


@pytest.mark.parametrize("seg, overlap", [(13, 1), (13, 5), (17, 1)])
def test_window_count_matches_the_pipeline(tiny_model, seg, overlap):
    import torch
    from diffusers import WanAnimatePipeline
    from PIL import Image

    torch.set_num_threads(1)
    pipe = WanAnimatePipeline.from_pretrained(tiny_model)
    pipe.set_progress_bar_config(disable=True)
    size = pipe.transformer.config.motion_encoder_size
    for n in (overlap + 1, seg, seg + 1, 2 * seg + 3):
        calls = []
        pipe(
            image=Image.new("RGB", (32, 32)),
            pose_video=[Image.new("RGB", (32, 32))] * n,
            face_video=[Image.new("RGB", (size, size))] * n,
            prompt="x",
            height=32,
            width=32,
            segment_frame_length=seg,
            num_inference_steps=1,
            prev_segment_conditioning_frames=overlap,
            callback_on_step_end=lambda p, i, t, kw, calls=calls: (calls.append(i), kw)[1],
            output_type="np",
        )
        assert len(calls) == count_windows(n, seg, overlap), n


@pytest.mark.parametrize("w, h", [(512, 512), (1920, 1080), (1080, 1920), (600, 800), (97, 301)])
@pytest.mark.parametrize("quality", ["preview", "480p", "720p"])
def test_output_size_keeps_aspect_in_multiples_of_16(w, h, quality):
    ow, oh = plan_output_size(w, h, quality)
    assert ow % 16 == 0 and oh % 16 == 0
    assert abs(ow / oh - w / h) / (w / h) < 0.12
    budget = {"preview": 256 * 144, "480p": 832 * 480, "720p": 1280 * 720}[quality]
    assert 0.8 * budget <= ow * oh <= budget


def test_the_progress_bar_only_moves_forward_through_the_preprocessing_passes():
    import threading

    from backend.job.progress import JobProgress

    seen: list[float] = []
    p = JobProgress(lambda **f: seen.append(f["progress"]) if "progress" in f else None, threading.Event())
    # A replace job with SAM2: the pose pass, SAM2's mask pass, then the face and mask pass.
    for what in ("pose", "masks (SAM2)", "face and mask (sam2)"):
        for i in range(1, 11):
            p.preprocessing(i, 10, what)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == max(seen) and seen[0] > 0
