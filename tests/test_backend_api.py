"""The backend over real HTTP, as the add-on (or a script on another machine) uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from backend_proc import BackendProc

SETTINGS = {"width": 64, "height": 48, "steps": 2, "segment_frames": 17, "overlap": 1}


@pytest.fixture()
def backend(tmp_path, backend_python, tiny_model):
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    yield b
    b.stop()


def submit(b, character, clip, **settings):
    body = {"character_path": str(character), "clip_path": str(clip), "settings": {**SETTINGS, **settings}}
    return b.post("/v1/jobs", json=body)


def test_every_request_needs_the_launch_token(backend):
    for path in ("/v1/health", "/v1/jobs", "/openapi.json"):
        assert requests.get(backend.url + path, timeout=10).status_code == 401
        bad = requests.get(backend.url + path, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert bad.status_code == 401
    r = requests.post(
        backend.url + "/v1/jobs", json={}, headers={"Authorization": "token test-token"}, timeout=10
    )
    assert r.status_code == 401
    assert backend.get("/v1/health").json()["status"] == "ok"


def test_openapi_describes_the_api(backend):
    paths = backend.get("/openapi.json").json()["paths"]
    for p in (
        "/v1/health",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/uploads",
        "/v1/jobs/{job_id}/files",
    ):
        assert p in paths


def test_job_runs_keeps_clip_timing_and_the_model_stays_warm(backend, astronaut_png, carphone_clip, tmp_path):
    r = submit(backend, astronaut_png, carphone_clip)
    assert r.status_code == 201, r.text
    st, seen = backend.wait(r.json()["id"])
    assert st["state"] == "done", st
    stages = {s["stage"] for s in seen}
    assert "preprocessing" in stages or "denoising" in stages or "decoding" in stages
    result = Path(st["result_dir"])
    frames = sorted(result.glob("frame_*.png"))
    assert len(frames) == 120 == st["frame_count"]
    job = json.loads((result / "job.json").read_text())
    assert job["tiny_random_model"] is True
    assert job["timings_s"]["model_load"] > 0
    kp = json.loads((result / "keypoints.json").read_text())
    assert len(kp["frames"]) == job["model_frames"] and len(kp["frames"][0]["keypoints"]) == 133
    # A face was found in carphone: real crops, not black frames.
    assert len(list((result / "face").glob("*.png"))) == job["model_frames"]

    st2, _ = backend.wait(submit(backend, astronaut_png, carphone_clip, seed=7).json()["id"])
    job2 = json.loads((Path(st2["result_dir"]) / "job.json").read_text())
    assert job2["timings_s"]["model_load"] == 0.0
    assert st2["result_dir"] != st["result_dir"]
    assert len(list(Path(st["result_dir"]).glob("frame_*.png"))) == 120  # the first job's frames untouched


def test_cancel_stops_within_a_step_and_keeps_nothing(backend, astronaut_png, carphone_clip):
    job_id = submit(backend, astronaut_png, carphone_clip, steps=50).json()["id"]
    backend.wait(job_id, until=lambda st: st["stage"] == "denoising" and st["step"] >= 1)
    assert backend.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    st, seen = backend.wait(job_id)
    assert st["state"] == "cancelled"
    assert st["result_dir"] is None
    assert max(s["step"] for s in seen) < 50
    data = Path(backend.proc.args[backend.proc.args.index("--data-dir") + 1])
    results = data / "results"
    assert not results.exists() or list(results.iterdir()) == []
    # The conditioning frames it had streamed to disk are gone too.
    assert list((data / "conditioning").iterdir()) == []

    # A finished job moves them into its result: pose and face PNGs, nothing left behind.
    st, _ = backend.wait(submit(backend, astronaut_png, carphone_clip).json()["id"])
    result = Path(st["result_dir"])
    job = json.loads((result / "job.json").read_text())
    assert len(list((result / "pose").glob("pose_*.png"))) == job["model_frames"]
    assert len(list((result / "face").glob("face_*.png"))) == job["model_frames"]
    assert list((data / "conditioning").iterdir()) == []


def test_queue_runs_one_job_at_a_time_in_order(backend, astronaut_png, carphone_clip):
    ids = [submit(backend, astronaut_png, carphone_clip, seed=i).json()["id"] for i in range(3)]
    sts = [backend.wait(i)[0] for i in ids]
    assert [s["state"] for s in sts] == ["done"] * 3
    for earlier, later in zip(sts, sts[1:], strict=False):
        assert later["started"] >= earlier["finished_at"]


def test_jobs_persist_across_a_restart(tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip):
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        job_id = submit(b, astronaut_png, carphone_clip).json()["id"]
        b.wait(job_id)
    finally:
        b.stop()
    b2 = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        jobs = {j["id"]: j for j in b2.get("/v1/jobs").json()}
        assert jobs[job_id]["state"] == "done"
        assert b2.get(f"/v1/jobs/{job_id}/files").status_code == 200
    finally:
        b2.stop()


def test_remote_style_upload_and_fetch(backend, astronaut_png, carphone_clip, tmp_path):
    ids = {}
    for key, path in (("character_upload", astronaut_png), ("clip_upload", carphone_clip)):
        r = backend.post("/v1/uploads", data=path.read_bytes(), headers={"X-Filename": path.name})
        assert r.status_code == 200
        ids[key] = r.json()["upload_id"]
    r = backend.post("/v1/jobs", json={**ids, "settings": SETTINGS})
    st, _ = backend.wait(r.json()["id"])
    assert st["state"] == "done", st
    files = backend.get(f"/v1/jobs/{st['id']}/files").json()["files"]
    assert "job.json" in files and sum(f.startswith("frame_") for f in files) == 120
    png = backend.get(f"/v1/jobs/{st['id']}/files/frame_000001.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert backend.get(f"/v1/jobs/{st['id']}/files/../../jobs.sqlite3").status_code == 404


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"settings": SETTINGS}, "character image is required"),
        ({"character_path": "/nope.png", "clip_path": "/nope.mp4", "settings": SETTINGS}, "was not found"),
        ({"character_path": "a", "clip_path": "b", "settings": {**SETTINGS, "width": 50}}, "multiple of 16"),
        ({"character_path": "a", "clip_path": "b", "settings": {**SETTINGS, "segment_frames": 20}}, "4n+1"),
        ({"character_path": "a", "clip_path": "b", "settings": {**SETTINGS, "overlap": 3}}, "overlap"),
        ({"character_path": "a", "clip_path": "b", "settings": {"stepz": 3}}, "unknown settings"),
    ],
)
def test_bad_requests_say_what_to_change(backend, body, fragment):
    r = backend.post("/v1/jobs", json=body)
    assert r.status_code == 400
    assert fragment in r.json()["detail"]


def test_replace_mode_on_a_trimmed_range_masks_the_performer(backend, astronaut_png, carphone_clip):
    import cv2
    import numpy as np

    st, _ = backend.wait(
        # At the clip's own size: the official shaping dilates by 9 output pixels, which at a
        # thumbnail size would cover all of this close-up and leave no background to check.
        submit(
            backend,
            astronaut_png,
            carphone_clip,
            mode="replace",
            clip_start=10,
            clip_frames=40,
            width=176,
            height=144,
        ).json()["id"]
    )
    assert st["state"] == "done", st
    assert st["frame_count"] == 40  # just the trimmed range, one frame per clip frame
    result = Path(st["result_dir"])
    job = json.loads((result / "job.json").read_text())
    assert job["settings"]["mode"] == "replace"
    mask = cv2.imread(str(result / "mask" / "mask_000001.png"), cv2.IMREAD_GRAYSCALE)
    bg = cv2.imread(str(result / "background" / "background_000001.png"))
    assert set(np.unique(mask)) == {0, 255}
    assert 0.05 < (mask == 255).mean() < 0.95  # the performer, not the whole frame or nothing
    assert (bg[mask == 255] == 0).all() and bg[mask == 0].mean() > 20
    # shaped by the official rule: the box around the dilated performer, all of it regenerated
    ys, xs = np.nonzero(mask)
    assert (mask[ys.min() : ys.max(), xs.min() : xs.max()] == 255).all()


def _frames(result_dir: str) -> list[bytes]:
    import cv2

    return [cv2.imread(str(p)).tobytes() for p in sorted(Path(result_dir).glob("frame_*.png"))]


def test_a_cancelled_job_submitted_again_resumes_after_its_finished_windows(
    backend, astronaut_png, carphone_clip
):
    settings = {"steps": 6, "segment_frames": 9}
    job_id = submit(backend, astronaut_png, carphone_clip, **settings).json()["id"]
    backend.wait(job_id, until=lambda st: (st["window"] or 0) >= 3 and st["stage"] == "denoising")
    backend.post(f"/v1/jobs/{job_id}/cancel")
    assert backend.wait(job_id)[0]["state"] == "cancelled"

    st, seen = backend.wait(submit(backend, astronaut_png, carphone_clip, **settings).json()["id"])
    assert st["state"] == "done", st
    job = json.loads((Path(st["result_dir"]) / "job.json").read_text())
    # The cancel lands within a step of window 3 or later: windows before it were kept.
    resumed = job["resumed_windows"]
    assert 2 <= resumed < job["windows"]
    assert any(f"after window {resumed}" in s["message"] for s in seen)
    # Once done the saved windows are gone: the same request again starts from scratch,
    # and gives exactly the frames the resumed job gave.
    st2, seen2 = backend.wait(submit(backend, astronaut_png, carphone_clip, **settings).json()["id"])
    assert not any("Resuming" in s["message"] for s in seen2)
    assert _frames(st2["result_dir"]) == _frames(st["result_dir"])


def test_a_job_cut_short_by_a_crash_resumes_in_the_restarted_backend(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    settings = {"steps": 6, "segment_frames": 9}
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        job_id = submit(b, astronaut_png, carphone_clip, **settings).json()["id"]
        b.wait(job_id, until=lambda st: (st["window"] or 0) >= 2 and st["stage"] == "denoising")
    finally:
        b.proc.kill()  # no shutdown: as if the machine lost power
        b.proc.wait()
        b.log.close()
    b2 = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        old = b2.get(f"/v1/jobs/{job_id}").json()
        assert old["state"] == "failed" and "resumes" in old["error"]
        st, _ = b2.wait(submit(b2, astronaut_png, carphone_clip, **settings).json()["id"])
        assert st["state"] == "done"
        job = json.loads((Path(st["result_dir"]) / "job.json").read_text())
        assert job["resumed_windows"] >= 1
        # The result is as whole as an uninterrupted one: who was followed is shown too.
        assert (Path(st["result_dir"]) / "performer.png").is_file()
    finally:
        b2.stop()


def test_a_rerun_with_another_seed_reuses_the_detected_keypoints(backend, astronaut_png, carphone_clip):
    st1, _ = backend.wait(submit(backend, astronaut_png, carphone_clip).json()["id"])
    st2, _ = backend.wait(submit(backend, astronaut_png, carphone_clip, seed=99, steps=1).json()["id"])
    st3, _ = backend.wait(
        submit(backend, astronaut_png, carphone_clip, clip_start=10, clip_frames=30).json()["id"]
    )
    jobs = [json.loads((Path(s["result_dir"]) / "job.json").read_text()) for s in (st1, st2, st3)]
    assert "cached" not in jobs[0]["estimator"]
    assert "cached" in jobs[1]["estimator"]
    assert all((Path(s["result_dir"]) / "performer.png").is_file() for s in (st1, st2, st3))
    assert "cached" not in jobs[2]["estimator"]  # another range of the clip: detected afresh
    assert jobs[1]["timings_s"]["preprocessing"] < jobs[0]["timings_s"]["preprocessing"]
    kp = [json.loads((Path(s["result_dir"]) / "keypoints.json").read_text()) for s in (st1, st2)]
    assert [f["keypoints"] for f in kp[0]["frames"]] == [f["keypoints"] for f in kp[1]["frames"]]
    # Cached keypoints draw exactly the pose that fresh detection drew.
    poses = [sorted((Path(s["result_dir"]) / "pose").glob("*.png")) for s in (st1, st2)]
    assert [p.read_bytes() for p in poses[0]] == [p.read_bytes() for p in poses[1]]
