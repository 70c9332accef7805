"""Small, far faces (a street shot, a wide plate): the face landmarks are missing or a few
pixels wide, yet the performer's body is found. The job must not fail: the face crops come
from the head points of the whole-body pose, on the performer's real head, and the job says
in how many frames that was so."""

from __future__ import annotations

import numpy as np
import pytest
from backend_proc import BackendProc, keypoints_job
from rendered_clips import render_clip

from backend.preprocess.pose_format import face_box, head_box

W, H, FRAMES = 640, 360, 24


def _kps(points: dict[int, tuple[float, float]]) -> np.ndarray:
    k = np.zeros((133, 3))
    for i, (x, y) in points.items():
        k[i] = (x, y, 0.9)
    return k


def test_head_box_places_a_face_crop_from_the_whole_body_head_points():
    # A face 10 px wide: ears 10 px apart, eyes 4 px apart, nose below the eyes.
    k = _kps({0: (100, 52), 1: (102, 50), 2: (98, 50), 3: (105, 51), 4: (95, 51), 5: (112, 70), 6: (88, 70)})
    # Landmarks spanning 2 px are no face to crop by.
    for i in range(23, 91):
        k[i] = (100 + (i % 2), 51 + (i % 3) * 0.5, 0.5)
    assert face_box(k, 360, 640) is None
    x0, y0, x1, y1 = head_box(k, 360, 640)
    assert x0 <= 95 and x1 >= 105  # the ears are inside (the official margin, truncated to pixels)
    assert y0 < 50 < y1 and y1 > 55  # the eyes inside, room below for the chin
    assert 8 < (x1 - x0) < 20 and 8 < (y1 - y0) < 25  # head-sized, not body-sized
    # Eyes only (a turned head hides an ear): still centred on the head.
    eyes_only = _kps({0: (100, 52), 1: (102, 50), 2: (98, 50)})
    ex0, ey0, ex1, ey1 = head_box(eyes_only, 360, 640)
    assert abs((ex0 + ex1) / 2 - 100) < 1.5 and ey0 < 50 < ey1
    # Only shoulders (the head cut by the frame top, or unseen): above their middle.
    shoulders = _kps({5: (130, 100), 6: (90, 100)})
    sx0, sy0, sx1, sy1 = head_box(shoulders, 360, 640)
    assert sx0 < 110 < sx1 and sy1 < 100
    assert head_box(_kps({}), 360, 640) is None


@pytest.fixture()
def far_clip(tmp_path):
    # Seen from behind (no facial features), a little further than the other rendered clips.
    person = {"shirt": (0.15, 0.3, 0.7), "start": [-1.0, 0.0], "end": [1.0, 0.0], "face": False}
    clip, truth = render_clip(tmp_path, "far", [person], W, H, FRAMES, distance=6.0)
    return clip, [frame[0] for frame in truth]


def test_a_far_performer_with_a_tiny_face_gets_face_crops_on_their_head(
    tmp_path, backend_python, tiny_model, astronaut_png, far_clip
):
    clip, truth = far_clip
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        job, frames, _result = keypoints_job(b, astronaut_png, clip)
    finally:
        b.stop()
    faces = job["faces"]
    print("faces:", faces, "warnings:", job["warnings"])
    assert sum(faces.values()) == len(frames)
    assert faces["head_points"] > 0, faces  # the landmarks were not enough somewhere
    if faces["landmarks"] + faces["bridged"] < len(frames):
        assert any("face was small" in w for w in job["warnings"])
    head_h = []
    for f in frames:
        nose = truth[f["clip_frame"]][0]
        x0, y0, x1, y1 = f["face_box"]
        assert x0 <= nose[0] <= x1 and y0 <= nose[1] <= y1, (f["clip_frame"], nose, f["face_box"])
        head_h.append(y1 - y0)
    shoulder = np.hypot(*np.subtract(truth[0][5], truth[0][6]))
    # Head-sized crops: about half the shoulder width tall, not the whole body.
    assert 0.3 * shoulder < np.median(head_h) < 2.0 * shoulder, (np.median(head_h), shoulder)
