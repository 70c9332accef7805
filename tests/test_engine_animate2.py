"""Wan-Animate-2 as a second engine: its tiny random model end to end over HTTP, a resume after
kill -9 mid-segment with the frames an uninterrupted run gives, and replace mode refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.protocol import JobSettings
from tests.backend_proc import BackendProc, result_frames, result_json

# A tiny shot: 20 clip frames (carphone is 30 fps) are 16 frames at Animate-2's 24 fps, three
# segments of 9 frames, the second carrying one frame over from the first.
SETTINGS = {
    "engine": "wan-animate-2",
    "width": 64,
    "height": 48,
    "steps": 4,
    "segment_frames": 9,
    "overlap": 1,
    "guidance_scale": 3.0,
    "clip_frames": 20,
    "prompt": "a person waves",
}


def body(character: Path, clip: Path, **settings) -> dict:
    return {
        "character_path": str(character),
        "clip_path": str(clip),
        "settings": {**SETTINGS, **settings},
    }


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, backend_python, animate2_model, astronaut_png, carphone_clip):
    """One uninterrupted job, and the backend kept for the other tests of this module."""
    b = BackendProc(backend_python, tmp_path_factory.mktemp("data"), animate2_model)
    try:
        r = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip))
        assert r.status_code == 201, r.text
        # Polled often: the tiny model's segments pass in a fraction of a second.
        st, seen = b.wait(r.json()["id"], timeout=240, every=0.01)
        assert st["state"] == "done", st
        yield b, Path(st["result_dir"]), seen
    finally:
        b.stop()


def test_animate2_job_over_http_driven_by_the_clip(whole_run):
    _b, result, seen = whole_run
    job = result_json(result)
    assert job["engine"] == "wan-animate-2"
    assert job["tiny_random_model"] is True
    assert job["settings"]["engine"] == "wan-animate-2"
    # Driven by the clip's frames: no pose pass, no pose or face frames written.
    assert job["estimator"].startswith("none")
    assert not (result / "pose").exists() and not (result / "face").exists()
    assert job["model_fps"] == 24.0 and job["model_frames"] == 16
    assert job["windows"] == 2
    # Resampled back over the clip's duration at its own rate: one frame per clip frame.
    frames = result_frames(result)
    assert frames.shape == (20, 48, 64, 3)
    assert job["frame_count"] == 20
    # Progress per segment, with an ETA once a step has been timed. The tiny model's steps take
    # milliseconds and a poll may miss them all, so a segment's decode, which carries the same
    # window and ETA, counts as well.
    generating = [s for s in seen if s.get("stage") in ("denoising", "decoding")]
    windows = {(s.get("window"), s.get("windows")) for s in generating}
    assert (2, 2) in windows, windows
    assert any(s.get("eta_s") is not None for s in generating)


def test_replace_mode_with_animate2_is_refused_before_anything_loads(whole_run, astronaut_png, carphone_clip):
    b, _result, _seen = whole_run
    r = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, mode="replace"))
    assert r.status_code == 400
    message = json.dumps(r.json())
    assert "Wan-Animate-2 has no replace mode" in message and "Wan2.2-Animate" in message


@pytest.mark.parametrize(
    ("engine", "setting", "value"),
    [
        ("wan-animate-2", "fp8", True),
        ("wan-animate-2", "loras", [{"path": "/nowhere/style.safetensors", "strength": 1.0}]),
        ("wan-animate-2", "step_cache", 0.1),
        ("wan-animate-2", "attention", "sdpa"),
        ("wan-animate-2", "sampler", "unipc"),
        ("wan-animate-2-distilled", "guidance_scale", 3.0),
    ],
)
def test_a_setting_the_engine_does_not_use_is_refused_at_submit(
    whole_run, astronaut_png, carphone_clip, engine, setting, value
):
    b, _result, _seen = whole_run
    settings = {"engine": engine, setting: value}
    if engine != "wan-animate-2":
        settings.setdefault("guidance_scale", 1.0)
    r = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, **settings))
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert f"does not use {setting}" in detail and "Wan2.2-Animate" in detail, detail
    # Wan2.2-Animate uses every one of them.
    JobSettings(**{setting: value, "guidance_scale": 3.0}).validate()


def test_animate2_without_weights_names_the_download(tmp_path, backend_python, astronaut_png, carphone_clip):
    empty = tmp_path / "models"
    empty.mkdir()
    b = BackendProc(backend_python, tmp_path / "data", empty)
    try:
        r = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip))
        st, _ = b.wait(r.json()["id"], timeout=120)
    finally:
        b.stop()
    assert st["state"] == "failed"
    assert "python -m backend download --engine wan-animate-2" in st["error"]


def test_kill_9_mid_segment_resumes_with_the_uninterrupted_frames(
    tmp_path, backend_python, animate2_model, astronaut_png, carphone_clip, whole_run
):
    _b, whole, _seen = whole_run
    data = tmp_path / "data"
    b = BackendProc(backend_python, data, animate2_model)
    try:
        job = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, steps=4)).json()["id"]
        st, _ = b.wait(
            job,
            until=lambda st: (
                (st.get("window") == 2 and st.get("step", 0) >= 1) or st["state"] in ("done", "failed")
            ),
        )
        b.proc.kill()
        b.proc.wait()
        assert st["state"] == "running", st
    finally:
        b.stop()
    b = BackendProc(backend_python, data, animate2_model)
    try:
        result = b.run_job(body(astronaut_png, carphone_clip))
    finally:
        b.stop()
    job_doc = result_json(result)
    assert job_doc["resumed_windows"] == 1
    assert np.array_equal(result_frames(result), result_frames(whole))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_each_engine_names_what_its_model_folder_lacks(animate2_model, tiny_model, tmp_path):
    from backend.engines.wan_animate_2 import folder_problem
    from backend.model.model_store import model_dir_problem

    assert folder_problem(animate2_model / "wan-animate-2", "wan-animate-2") is None
    assert model_dir_problem(tiny_model) is None
    for engine, source, check in (
        ("wan-animate-2", animate2_model / "wan-animate-2", lambda d: folder_problem(d, "wan-animate-2")),
        ("wan-animate", tiny_model, model_dir_problem),
    ):
        # A download stopped before the VAE, then one whose transformer config is cut short.
        broken = tmp_path / engine
        broken.mkdir()
        for part in source.iterdir():
            if part.name not in ("vae", "transformer"):
                (broken / part.name).symlink_to(part, target_is_directory=part.is_dir())
        (broken / "transformer").mkdir()
        problem = check(broken)
        assert "missing vae" in problem and "python -m backend download" in problem, problem
        (broken / "vae").symlink_to(source / "vae", target_is_directory=True)
        (broken / "transformer" / "config.json").write_text('{"_class_name": ')
        problem = check(broken)
        assert str(broken / "transformer" / "config.json") in problem and "cannot be read" in problem, problem


@pytest.mark.parametrize(
    ("clip_w", "clip_h", "width", "height"),
    [
        (176, 144, 64, 48),
        (1280, 720, 832, 480),
        (720, 1280, 832, 480),
        (333, 777, 480, 832),
        (640, 480, 640, 480),
    ],
)
def test_driving_frames_are_letterboxed_as_the_pipeline_letterboxes_them(clip_w, clip_h, width, height):
    """The driving frames are stored at the output size, so the pipeline's own letterbox leaves
    them as they are: ours must be the one it would make from the clip's frame. The reference is
    the video processor the pipeline's video step declares (its class and config)."""
    from diffusers.modular_pipelines.wan_animate_2.encoders import WanAnimate2ProcessVideosInputStep
    from PIL import Image

    from backend.engines.wan_animate_2 import driving_frame

    spec = next(
        c for c in WanAnimate2ProcessVideosInputStep().expected_components if c.name == "video_processor"
    )
    processor = spec.create()
    rng = np.random.default_rng(clip_w * clip_h)
    # Smooth content with an edge: a resampling rule that differs shows on both.
    yy, xx = np.mgrid[0:clip_h, 0:clip_w]
    frame = np.stack([xx * 255 // clip_w, yy * 255 // clip_h, ((xx // 17 + yy // 13) % 2) * 255], -1)
    frame = np.clip(frame + rng.integers(-20, 21, frame.shape), 0, 255).astype(np.uint8)
    theirs = np.asarray(processor._resize_and_fill(Image.fromarray(frame), width, height))
    ours = driving_frame(frame, width, height)
    assert ours.shape == theirs.shape == (height, width, 3)
    assert np.array_equal(ours, theirs), f"{np.count_nonzero(ours != theirs)} values differ"
    # Stored at the output size, the pipeline's own pass changes nothing.
    again = np.asarray(processor._resize_and_fill(Image.fromarray(ours), width, height))
    assert np.array_equal(again, ours)


def test_the_engine_hands_the_job_its_pipelines_letterbox(animate2_model):
    """What the job fits the clip's frames with comes from the prepared engine: its pipeline's rule."""
    from diffusers.modular_pipelines.wan_animate_2.encoders import WanAnimate2ProcessVideosInputStep
    from PIL import Image

    from backend.engines import make_engine
    from backend.model.model_store import ModelStore

    engine = make_engine("wan-animate-2", ModelStore("cpu"), animate2_model)
    prepared = engine.prepare(JobSettings(**{**SETTINGS, "clip_frames": 0}), lambda **_: None)
    spec = next(
        c for c in WanAnimate2ProcessVideosInputStep().expected_components if c.name == "video_processor"
    )
    frame = np.random.default_rng(3).integers(0, 256, (144, 176, 3), dtype=np.uint8)
    theirs = np.asarray(spec.create()._resize_and_fill(Image.fromarray(frame), 64, 48))
    assert np.array_equal(prepared.fit_driving(frame, 64, 48), theirs)
