"""Whole bodies and several people, rendered in Blender with a known answer (where each
mannequin's joints project), through a real backend job with the embedded estimator: the
skeleton must land on the performer's body and stay on the same person as others cross."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from addon_package import extension_package
from backend_proc import BackendProc, keypoints_job
from rendered_clips import render_clip

W, H, FRAMES = 320, 240, 30
LIMBS = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]  # shoulders to ankles
BLUE, RED = (0.15, 0.3, 0.7), (0.7, 0.2, 0.15)


def _render(tmp_path, name: str, people: list[dict]):
    return render_clip(tmp_path, name, people, W, H, FRAMES)


def _keypoints(b: BackendProc, character, clip, **settings) -> tuple[dict, list]:
    job, frames, _result = keypoints_job(b, character, clip, **settings)
    return job, frames


def _errors(frames: list, truth: list, person: int, mirrored: bool = False) -> np.ndarray:
    """Per frame, the pixel distance of each limb point from that person's rendered joint
    (NaN where the estimator gave no confident point). ``mirrored``: the skeleton taken as
    either way round, whichever fits better: on a small figure mediapipe sometimes swaps left
    and right (it takes the figure for one seen from behind), which says nothing of whom it
    follows."""
    out = []
    for f in frames:
        k = np.asarray(f["keypoints"])
        want = truth[f["clip_frame"]][person]
        row = [
            np.hypot(k[i, 0] - want[i][0], k[i, 1] - want[i][1]) if k[i, 2] >= 0.5 else np.nan for i in LIMBS
        ]
        if mirrored:
            # COCO's left and right limb points alternate: 5/6, 7/8 ... 15/16.
            swapped = [
                np.hypot(k[i, 0] - want[j][0], k[i, 1] - want[j][1]) if k[i, 2] >= 0.5 else np.nan
                for i, j in zip(LIMBS, [m + 1 if m % 2 else m - 1 for m in LIMBS], strict=True)
            ]
            if np.nanmedian(swapped) < np.nanmedian(row):
                row = swapped
        out.append(row)
    return np.asarray(out)


@pytest.fixture(scope="module")
def backend(tmp_path_factory, backend_python, tiny_model):
    b = BackendProc(backend_python, tmp_path_factory.mktemp("data"), tiny_model)
    yield b
    b.stop()


def test_a_whole_body_rendered_in_blender_is_traced_limb_by_limb(tmp_path, backend, astronaut_png):
    clip, truth = _render(tmp_path, "jacks", [{"shirt": BLUE, "start": [-0.3, 0.0], "end": [0.3, 0.0]}])
    job, frames = _keypoints(backend, astronaut_png, clip)
    assert job["estimator"].startswith("mediapipe")
    err = _errors(frames, truth, 0)
    # The figure is about 150 px tall; its limbs are 8-10 px thick.
    found = np.isfinite(err)
    assert found.mean() > 0.95, f"only {found.mean():.0%} of the limb points were found"
    assert np.nanmedian(err) < 5, np.nanmedian(err)
    assert np.nanpercentile(err, 95) < 12, np.nanpercentile(err, 95)
    # The arms sweep from the hips to above the head: the wrists' traced heights must follow.
    wrist_y = np.array([np.asarray(f["keypoints"])[9, 1] for f in frames])
    true_y = np.array([truth[f["clip_frame"]][0][9][1] for f in frames])
    assert true_y.max() - true_y.min() > 60
    assert np.corrcoef(wrist_y, true_y)[0, 1] > 0.95


TWO = [
    # The performer: near the camera, walking left to right while jumping.
    {"shirt": BLUE, "start": [-1.2, -0.6], "end": [1.2, -0.6]},
    # Someone farther back (smaller), crossing the other way, out of step.
    {"shirt": RED, "start": [1.4, 0.9], "end": [-1.4, 0.9], "phase": 0.25},
]


@pytest.fixture(scope="module")
def crossing(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("crossing"), "crossing", TWO)


def _follows(frames: list, truth: list, person: int) -> np.ndarray:
    """Asserts every skeleton is on ``person`` and never on the other; returns per frame
    whether there was one."""
    mine, other = _errors(frames, truth, person, True), _errors(frames, truth, 1 - person, True)
    found = np.isfinite(mine).sum(axis=1) >= len(LIMBS) // 2
    per_frame_mine = np.array([np.nanmedian(r) if f else np.inf for r, f in zip(mine, found, strict=True)])
    per_frame_other = np.array([np.nanmedian(r) if f else np.inf for r, f in zip(other, found, strict=True)])
    # Within 20 px (the figures are 140-200 px tall; partly hidden limbs are guessed), and
    # nearer this person's joints than the other's.
    far = np.flatnonzero(found & (per_frame_mine >= 20))
    assert not len(far), {int(i): per_frame_mine[i] for i in far}
    assert (per_frame_mine[found] < per_frame_other[found]).all(), (per_frame_mine, per_frame_other)
    assert all(f["person_box"] is not None for f in frames)
    return found


def test_two_people_crossing_the_largest_is_followed_throughout(backend, astronaut_png, crossing):
    clip, truth = crossing
    _job, frames = _keypoints(backend, astronaut_png, clip)
    # The performer is in front throughout: a skeleton in every frame, even as they overlap.
    assert _follows(frames, truth, 0).all()


def test_two_people_crossing_the_picked_one_is_followed(backend, astronaut_png, crossing):
    clip, truth = crossing
    # A click on the person at the back, in the first frame (fractions of the frame).
    hips = truth[0][1]
    x = (hips[11][0] + hips[12][0]) / 2 / W
    y = (hips[11][1] + hips[12][1]) / 2 / H
    job, frames = _keypoints(backend, astronaut_png, clip, person=[x, y])
    assert job["settings"]["person"] == pytest.approx([x, y])
    found = _follows(frames, truth, 1)
    # Found before and after the crossing. While hidden behind the other person there is no
    # skeleton rather than the other person's (the keypoint filter bridges short gaps only).
    clip_frames = np.array([f["clip_frame"] for f in frames])
    assert found[clip_frames < 8].all() and found[clip_frames >= FRAMES - 8].all(), found


def test_replace_mode_masks_only_the_followed_performer(backend, astronaut_png, crossing, tmp_path):
    from PIL import Image

    from backend.preprocess.segment_mediapipe import MediapipeSegmenter

    clip, truth = crossing

    def region(person: int, frame: int) -> tuple[slice, slice]:
        """The middle of a person's body in the frame: between the shoulders, neck to knees."""
        j = truth[frame][person]
        x0, x1 = sorted((j[6][0], j[5][0]))
        return slice(int(j[5][1]), int(j[13][1])), slice(int(x0) + 2, int(x1) - 2)

    # A frame where the segmenter alone covers both people, so the mask's choice is the job's.
    cap = cv2.VideoCapture(str(clip))
    segmenter = MediapipeSegmenter()
    both = None
    for n in range(8):
        _ok, bgr = cap.read()
        prob = segmenter.mask(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if all((prob[region(p, n)] > 0.5).mean() > 0.5 for p in (0, 1)):
            both = n
            break
    segmenter.close()
    cap.release()
    assert both is not None, "the segmenter should find both rendered people in an early frame"

    body = {
        "character_path": str(astronaut_png),
        "clip_path": str(clip),
        "settings": {
            "width": W,
            "height": H,
            "steps": 1,
            "segment_frames": 17,
            "clip_frames": 17,
            "estimator": "mediapipe",
            "mode": "replace",
        },
    }
    result = backend.run_job(body)
    # Same frame rate and size: model frame n is clip frame n, pixel for pixel.
    name = f"{both + 1:06d}.png"
    mask = np.asarray(Image.open(result / "mask" / f"mask_{name}").convert("L"))
    background = np.asarray(Image.open(result / "background" / f"background_{name}").convert("RGB"))
    assert mask.shape == (H, W)
    assert (mask[region(0, both)] == 255).all()  # the followed performer is regenerated
    assert (mask[region(1, both)] == 0).all()  # the other person stays, in the background
    assert background[region(1, both)].mean() > 20


def _hips(truth: list, frame: int, person: int) -> tuple[float, float]:
    j = truth[frame][person]
    return (j[11][0] + j[12][0]) / 2 / W, (j[11][1] + j[12][1]) / 2 / H


def test_a_pick_on_a_late_frame_follows_that_person_from_the_start(
    tmp_path, backend, astronaut_png, crossing
):
    from PIL import Image

    clip, truth = crossing
    # A click on the person at the back after the two have crossed, as an artist scrubbing to a
    # clear frame would: they are followed from the first frame, not only from the click on.
    late = FRAMES - 6
    x, y = _hips(truth, late, 1)
    job, frames, result = keypoints_job(backend, astronaut_png, clip, person=[x, y], person_frame=late)
    found = _follows(frames, truth, 1)
    clip_frames = np.array([f["clip_frame"] for f in frames])
    assert found[clip_frames < 8].all() and found[clip_frames >= FRAMES - 8].all(), found
    # The job says whom it followed: the picked frame, the box under the click, a thumbnail.
    performer = job["performer"]
    assert performer["picked"] and performer["clip_frame"] == late and performer["people_on_frame"] == 2
    x1, y1, x2, y2 = performer["box"]
    assert x1 <= x * W <= x2 and y1 <= y * H <= y2
    assert performer["followed_from_clip_frame"] == 0
    thumb = np.asarray(Image.open(result / performer["thumbnail"]).convert("RGB")).astype(int)
    assert thumb.shape == (H, W, 3)
    green = (thumb[..., 1] > 180) & (thumb[..., 0] < 60) & (thumb[..., 2] < 60)
    gy, gx = np.nonzero(green)
    # The green outline is the followed box, around the click.
    assert gx.min() <= x * W <= gx.max() and gy.min() <= y * H <= gy.max()
    assert gx.max() - gx.min() < W / 2  # one person's box, not the frame


def test_a_pick_on_empty_background_is_refused_before_the_pose_pass(backend, astronaut_png, crossing):
    from PIL import Image

    clip, _truth = crossing
    # Between the two people, above their heads: sky.
    r = backend.post(
        "/v1/jobs",
        json={
            "character_path": str(astronaut_png),
            "clip_path": str(clip),
            "settings": {
                "width": 64,
                "height": 48,
                "steps": 1,
                "estimator": "mediapipe",
                "person": [0.55, 0.1],
            },
        },
    )
    assert r.status_code == 201, r.text
    st, seen = backend.wait(r.json()["id"])
    assert st["state"] == "failed", st
    msg = st["error"]
    assert "is not on a person" in msg and "2 people were found" in msg, msg
    # Refused before any frame's pose was estimated, let alone a model step.
    assert not any("pose" in (s.get("message") or "") for s in seen), [s.get("message") for s in seen]
    kept = Path(msg.split("What was looked at is in ")[1].rstrip("."))
    pngs = sorted(kept.glob("looked_at_*.png"))
    assert len(pngs) == 1
    img = np.asarray(Image.open(pngs[0]).convert("RGB")).astype(int)
    # Both people found are boxed (grey outlines), and the pick is marked (a red cross).
    grey = (abs(img[..., 0] - 160) < 3) & (abs(img[..., 1] - 160) < 3) & (abs(img[..., 2] - 160) < 3)
    assert grey.sum() > 100
    red = (img[..., 0] > 200) & (img[..., 1] < 80)
    ry, rx = np.nonzero(red)
    assert abs(rx.mean() - 0.55 * W) < 6 and abs(ry.mean() - 0.1 * H) < 6


def test_the_clip_check_shows_in_seconds_whom_a_job_would_follow(backend, astronaut_png, crossing):
    import base64
    import io

    from PIL import Image

    clip, truth = crossing
    body = {
        "character_path": str(astronaut_png),
        "clip_path": str(clip),
        "settings": {"width": 64, "height": 48, "estimator": "mediapipe"},
    }
    n_jobs = len(backend.get("/v1/jobs").json())
    r = backend.post("/v1/check", json=body)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["ok"] and rep["skeleton"] and rep["clip_frame"] == 0
    # Two people and no pick: the artist is told, before any wait, and shown who is followed.
    assert any("2 people are in view" in w for w in rep["warnings"]), rep["warnings"]
    # The performer's face is about 19 px tall in this 320x240 clip: the artist hears of it first.
    assert any("face is small" in w for w in rep["warnings"]), rep["warnings"]
    x1, y1, x2, y2 = rep["box"]
    hips = truth[0][0][11]
    assert x1 <= hips[0] <= x2 and y1 <= hips[1] <= y2  # the larger, nearer person
    fx1, fy1, fx2, fy2 = rep["face_box"]
    nose = truth[0][0][0]
    assert fx1 <= nose[0] <= fx2 and fy1 <= nose[1] <= fy2
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(rep["preview_png"]))).convert("RGB"))
    assert img.shape == (H, W, 3)
    # A pick on the other person: no warning about several people, their box.
    x, y = _hips(truth, 0, 1)
    rep = backend.post("/v1/check", json={**body, "settings": {**body["settings"], "person": [x, y]}}).json()
    assert rep["ok"] and not any("people are in view" in w for w in rep["warnings"])
    assert rep["box"][0] <= x * W <= rep["box"][2]
    # A pick on nobody: what a job would fail with, without failing a job.
    rep = backend.post(
        "/v1/check", json={**body, "settings": {**body["settings"], "person": [0.55, 0.1]}}
    ).json()
    assert not rep["ok"] and "is not on a person" in rep["error"]
    assert len(backend.get("/v1/jobs").json()) == n_jobs  # nothing was queued


def test_generate_waits_on_the_clip_checks_warnings_for_continue_or_cancel(
    tmp_path, backend, astronaut_png, crossing
):
    """What the sidebar's Generate does with a UI: the check's warnings hold the job until the
    artist answers; Cancel queues nothing, Continue runs the job."""
    import time

    ext = extension_package()
    JobRequest, JobSettings = ext.backend.protocol.JobRequest, ext.backend.protocol.JobSettings
    BackendClient = ext.wan_animate_blender.core.client.BackendClient
    JobSession = ext.wan_animate_blender.core.job_session.JobSession

    clip, _truth = crossing

    def session() -> JobSession:
        req = JobRequest(
            settings=JobSettings(width=64, height=48, steps=1, segment_frames=17, estimator="mediapipe"),
            output_dir=str(tmp_path / "out"),
            name="check",
        )
        s = JobSession(
            req, astronaut_png, clip, remote=BackendClient(backend.url, backend.token), ask_on_warnings=True
        )
        s.remote = None  # a local backend on this machine: paths, not uploads
        s.local = _Running(BackendClient(backend.url, backend.token))
        s.start()
        deadline = time.monotonic() + 60
        while not s.state.asking and not s.state.finished:
            assert time.monotonic() < deadline, s.state
            time.sleep(0.1)
        return s

    n_jobs = len(backend.get("/v1/jobs").json())
    s = session()
    assert s.state.asking and any("people are in view" in w for w in s.state.check_warnings)
    assert s.state.check.preview_png
    s.answer(False)
    s._thread.join(30)
    assert s.state.finished and s.state.cancelled and len(backend.get("/v1/jobs").json()) == n_jobs

    s = session()
    s.answer(True)
    s._thread.join(300)
    assert s.state.ok and s.state.result_dir is not None, s.state


class _Running:
    """A backend this machine already runs, as the session's local backend."""

    def __init__(self, client) -> None:
        self.client, self.running = client, True

    def start(self):
        return self.client
