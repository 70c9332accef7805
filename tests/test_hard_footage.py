"""Footage the clean test clips never show, rendered in Blender with the joints as the answer
key: a performer cut by the frame edge, and a close-up where the legs are out of frame. Each
clip goes through a real job with the embedded estimator; the test reports, per clip, the frames
with a skeleton on the performer and the frames with a face crop on their face (printed with
-s), and holds both to what an artist would accept. Far people with tiny faces, two people
crossing and full-body masks have their own tests (test_small_faces, test_rendered_people,
test_replace_masks)."""

from __future__ import annotations

import numpy as np
import pytest
from backend_proc import BackendProc, keypoints_job
from rendered_clips import render_clip

W, H, FRAMES = 320, 240, 24
BODY = [0, 5, 6, 7, 8, 11, 12, 13, 14]  # nose, shoulders, elbows, hips, knees


@pytest.fixture(scope="module")
def backend(tmp_path_factory, backend_python, tiny_model):
    b = BackendProc(backend_python, tmp_path_factory.mktemp("data"), tiny_model)
    yield b
    b.stop()


def _report(name: str, frames: list, truth: list, near: float) -> dict[str, float]:
    """Per clip: of the frames where the performer's head, shoulders and hips show, the share
    with a skeleton on them (most visible joints within ``near`` px); the frames with a skeleton
    anywhere else (none may be); and of the frames where their nose shows, the share whose face
    crop holds it."""
    on_body, body_frames, astray, on_face, face_frames = 0, 0, 0, 0, 0
    for f in frames:
        want = truth[f["clip_frame"]][0]
        k = np.asarray(f["keypoints"])
        visible = [i for i in BODY if 0 <= want[i][0] < W and 0 <= want[i][1] < H]
        sure = [i for i in visible if k[i, 2] >= 0.5]
        hits = [np.hypot(k[i, 0] - want[i][0], k[i, 1] - want[i][1]) < near for i in sure]
        if sure and np.mean(hits) < 0.75:
            astray += 1
        if {0, 5, 6, 11, 12} <= set(visible):
            body_frames += 1
            on_body += len(sure) >= len(visible) // 2 and bool(hits) and np.mean(hits) >= 0.75
        nose = want[0]
        if 0 <= nose[0] < W and 0 <= nose[1] < H:
            face_frames += 1
            x0, y0, x1, y1 = f["face_box"]
            on_face += x0 <= nose[0] <= x1 and y0 <= nose[1] <= y1
    print(
        f"{name}: skeleton on the performer in {on_body}/{body_frames} frames showing their head, shoulders "
        f"and hips ({len(frames)} in all); elsewhere in {astray}; face crop on their face in "
        f"{on_face}/{face_frames} frames showing it"
    )
    return {
        "skeleton": on_body / max(body_frames, 1),
        "astray": astray,
        "face": on_face / max(face_frames, 1),
    }


def test_a_performer_cut_by_the_frame_edge_is_found_while_in_view(tmp_path, backend, astronaut_png):
    # Walking in from beyond the left edge: more than half the body out of frame at the start.
    # The embedded estimator finds a body once its head and both shoulders are in view (the
    # official ViTPose estimator's detector also finds less); before that it must find nothing
    # rather than something else, and the job must not fail.
    person = {"shirt": (0.15, 0.3, 0.7), "start": [-2.2, 0.0], "end": [-1.2, 0.0]}
    clip, truth = render_clip(tmp_path, "edge", [person], W, H, FRAMES)
    _job_json, frames, _result = keypoints_job(backend, astronaut_png, clip)
    got = _report("cut by the edge", frames, truth, near=20)
    assert got["skeleton"] >= 0.9 and got["astray"] == 0 and got["face"] >= 0.8, got


def test_a_close_up_with_the_legs_out_of_frame_is_traced(tmp_path, backend, astronaut_png):
    person = {"shirt": (0.7, 0.2, 0.15), "start": [-0.15, 0.0], "end": [0.15, 0.0]}
    clip, truth = render_clip(tmp_path, "closeup", [person], W, H, FRAMES, distance=1.4, camera_height=1.45)
    job, frames, _result = keypoints_job(backend, astronaut_png, clip)
    # The figure fills the frame (upper arms about 60 px): a joint within a tenth of the frame
    # height of its answer is on the performer.
    got = _report("close-up", frames, truth, near=H / 10)
    assert got["skeleton"] >= 0.9 and got["astray"] == 0 and got["face"] >= 0.9, got
    assert job["faces"]["landmarks"] > 0  # a face this big is found by its landmarks
