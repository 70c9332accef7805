"""The official-estimator path (YOLOv10m + ViTPose-H through onnxruntime) on small ONNX models
built here with the real ones' signatures, and the performer tracking behind it."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_models import blob_frame, make_checkpoint

from backend.preprocess.estimator_onnx import OnnxPoseEstimator, refine_peaks
from backend.preprocess.person_track import PersonTracker

# Rows in the detector's 640x640 space: two people, a dog (class 16) and a weak detection.
ROWS = [
    [64, 64, 320, 576, 0.9, 0],
    [400, 200, 480, 440, 0.8, 0],
    [500, 500, 600, 600, 0.95, 16],
    [0, 0, 600, 600, 0.1, 0],
]


def test_a_gaussian_peak_is_found_between_heatmap_cells():
    yy, xx = np.mgrid[0:64, 0:48].astype(np.float64)
    truth = np.array([[20.3, 31.7], [7.85, 50.2], [40.5, 12.25]])
    heat = np.stack([0.8 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2)) for x, y in truth])
    xy, height = refine_peaks(heat)
    assert np.abs(xy - truth).max() < 0.1  # the plain argmax is off by up to half a cell
    assert np.allclose(height, 0.8, atol=0.05)


def test_person_boxes_come_back_in_frame_pixels(tmp_path):
    est = OnnxPoseEstimator(make_checkpoint(tmp_path / "pc", ROWS))
    boxes = est.detect(np.zeros((240, 320, 3), np.uint8))
    # People only, confident ones only; 640 -> 320 wide (x0.5) and 640 -> 240 high (x0.375).
    assert boxes.shape == (2, 5)
    assert np.allclose(boxes[0, :4], [32, 24, 160, 216]) and np.allclose(boxes[1, :4], [200, 75, 240, 165])


def test_points_land_on_their_blob_in_the_frame_to_a_fraction_of_a_pixel(tmp_path):
    est = OnnxPoseEstimator(make_checkpoint(tmp_path / "pc", ROWS))
    blobs = [(71.3, 97.8, 0), (120.6, 60.2, 1), (96.0, 170.4, 2)]
    frame = blob_frame(320, 240, blobs)
    kps = est.estimate(frame)  # the largest person (box 32..160 x 24..216) is followed
    assert kps.shape == (133, 3)
    for k in range(133):
        x, y, _c = blobs[k % 3]
        assert abs(kps[k, 0] - x) < 0.5 and abs(kps[k, 1] - y) < 0.5, (k, kps[k])
    assert kps[:, 2].min() > 0.9  # a saturated blob is a confident point


def test_missing_models_say_how_to_get_them(tmp_path):
    with pytest.raises(RuntimeError, match="python -m backend download"):
        OnnxPoseEstimator(tmp_path / "empty")


def _box(cx, cy, w=40, h=100, score=0.9):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score]


def test_the_performer_is_followed_when_people_cross():
    # A (big, moving right) and B (smaller, moving left) cross at frame 10.
    frames = [[_box(100 + 10 * t, 200, 60, 150), _box(300 - 10 * t, 200)] for t in range(21)]
    tracker = PersonTracker()
    xs = [(tracker.update(np.array(f))[0] + tracker._last[2]) / 2 for f in frames]
    assert np.allclose(xs, [100 + 10 * t for t in range(21)])  # A throughout, never B

    # The user picked B (a point on it in the first frame): B throughout.
    tracker = PersonTracker(pick=(300, 210))
    boxes = [tracker.update(np.array(f)) for f in frames]
    assert np.allclose([(b[0] + b[2]) / 2 for b in boxes], [300 - 10 * t for t in range(21)])


def test_a_box_merging_two_people_does_not_carry_the_track_to_the_other_when_the_pose_recentres_it():
    # A moves right, B left; for frames 9-13, as they overlap, the detector sees one box
    # between them, nearer B.
    def frames():
        for t in range(21):
            a, b = 100 + 10 * t, 300 - 10 * t
            merged = [_box(b + 0.2 * (a - b), 200, 60, 150)]
            yield t, a, (merged if 9 <= t <= 13 else [_box(a, 200, 60, 150), _box(b, 200)])

    plain = PersonTracker()
    centres = []
    for _t, _a, f in frames():
        box = plain.update(np.array(f))
        centres.append((box[0] + box[2]) / 2)
    assert abs(centres[20] - 100) < 1  # the merged box led the track onto B

    followed = PersonTracker()
    centres = []
    for _t, a, f in frames():
        followed.update(np.array(f))
        moved = followed.recentre(a)  # where the pose estimator found A's body
        centres.append((moved[0] + moved[2]) / 2)
    assert np.allclose(centres, [100 + 10 * t for t in range(21)])


def test_a_short_disappearance_is_bridged_and_a_long_one_is_not():
    tracker = PersonTracker(max_gap=5)
    seen = []
    for t in range(30):
        visible = not 10 <= t < 13 and not 18 <= t < 28
        seen.append(tracker.update(np.array([_box(100 + 5 * t, 200)] if visible else [])))
    # Hidden for 3 frames: the predicted box stands in (score 0) and keeps moving with them.
    for t in (10, 11, 12):
        assert seen[t][4] == 0.0 and abs((seen[t][0] + seen[t][2]) / 2 - (100 + 5 * t)) < 1e-6
    # Hidden for 10 frames: 5 predicted, then nothing until they are seen again.
    assert all(seen[t] is not None for t in range(18, 23)) and all(seen[t] is None for t in range(23, 28))
    assert seen[28] is not None and seen[28][4] == 0.9


A_BLOBS = [(71.3, 97.8, 0), (120.6, 60.2, 1), (96.0, 170.4, 2)]  # on the larger person
B_BLOBS = [(212.0, 100.0, 0), (228.0, 128.0, 1), (216.0, 150.0, 2)]  # on the smaller one


def two_people_model(tiny_model, root, frames: int):
    """The tiny model with small ViTPose-shaped estimator models (a detector that always sees
    the same two people) and a still clip of ``frames`` frames of them."""
    import shutil

    import cv2

    model = root / "model"
    shutil.copytree(tiny_model, model)
    make_checkpoint(model / "process_checkpoint", ROWS)
    clip = root / "two_people.mp4"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
    frame = cv2.cvtColor(blob_frame(320, 240, A_BLOBS + B_BLOBS), cv2.COLOR_RGB2BGR)
    for _ in range(frames):
        out.write(frame)
    out.release()
    return model, clip


@pytest.fixture(scope="module")
def vitpose_setup(tmp_path_factory, tiny_model):
    return two_people_model(tiny_model, tmp_path_factory.mktemp("vitpose"), 20)


def _job(b, character, clip, **settings):
    from backend_proc import result_json

    body = {
        "character_path": str(character),
        "clip_path": str(clip),
        "settings": {"width": 64, "height": 48, "steps": 1, "segment_frames": 17, **settings},
    }
    result = b.run_job(body)
    return result_json(result), result_json(result, "keypoints.json")


def test_jobs_use_the_official_estimator_when_its_models_are_there(
    tmp_path, backend_python, vitpose_setup, astronaut_png, carphone_clip
):
    from backend_proc import BackendProc

    model, clip = vitpose_setup
    # Through a lossy mp4 (chroma at half resolution) the points land within a few pixels; the
    # sub-pixel decoding itself is checked above on exact frames.
    b = BackendProc(backend_python, tmp_path / "data", model)
    try:
        job, kp = _job(b, astronaut_png, clip)  # estimator "auto"
        assert job["estimator"] == "vitpose-h-wholebody (onnx)"
        first = np.asarray(kp["frames"][0]["keypoints"])
        for k in (0, 1, 2, 10, 100):
            x, y, _c = A_BLOBS[k % 3]  # the largest person, by default
            assert abs(first[k, 0] - x) < 3 and abs(first[k, 1] - y) < 3, (k, first[k])

        job, kp = _job(b, astronaut_png, clip, person=[220 / 320, 120 / 240])  # a click on the other one
        first = np.asarray(kp["frames"][0]["keypoints"])
        for k in (0, 1, 2, 10, 100):
            x, y, _c = B_BLOBS[k % 3]
            assert abs(first[k, 0] - x) < 3 and abs(first[k, 1] - y) < 3, (k, first[k])
        assert job["settings"]["person"] == [220 / 320, 120 / 240]
        # The followed person's box is saved per frame with the keypoints.
        assert all(f["person_box"][:4] == [200.0, 75.0, 240.0, 165.0] for f in kp["frames"])

        # Asked for by name, mediapipe still runs (on a clip with a real person).
        job, _ = _job(b, astronaut_png, carphone_clip, estimator="mediapipe", clip_frames=17)
        assert job["estimator"].startswith("mediapipe")
    finally:
        b.stop()
