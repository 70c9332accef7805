"""A cast: two mannequins rendered in Blender, each replaced by its own character in one job
through a real backend with the tiny model. Each pass must regenerate its own performer and
leave the other alone, read the plate the pass before made, and resume where it was cut."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from addon_package import extension_package
from backend_proc import BackendProc, result_frames, result_json
from PIL import Image
from rendered_clips import render_clip

from backend.preprocess.cast_masks import arbitrate, frame_ranges, nearest_first
from backend.protocol import JobRequest, RequestError

W, H, FRAMES = 256, 144, 17
BLUE, RED = (0.15, 0.3, 0.7), (0.7, 0.2, 0.15)
# Two performers standing apart, a little nearer (left) and farther (right), both jumping.
PEOPLE = [
    {"shirt": BLUE, "start": [-1.1, -0.3], "end": [-0.9, -0.3]},
    {"shirt": RED, "start": [1.1, 0.3], "end": [0.9, 0.3], "phase": 0.25},
]
# One step, 5-frame windows: four windows per pass on 17 frames, so a crash can land mid-pass.
SETTINGS = {
    "width": W,
    "height": H,
    "steps": 2,
    "segment_frames": 5,
    "estimator": "mediapipe",
    "mode": "replace",
}


def test_overlapping_masks_go_to_the_nearer_performer_and_the_frames_are_named():
    near, far = np.zeros((4, 6), np.uint8), np.zeros((4, 6), np.uint8)
    near[:, :4] = 255
    far[:, 2:] = 255
    # Row 2 stands lower in the frame (box bottom 90 > 60): it is nearer and keeps columns 2-3.
    (first, second), met = arbitrate([far, near], [60.0, 90.0])
    assert met
    assert (second == near).all()
    assert (first[:, 2:4] == 0).all() and (first[:, 4:] == 255).all()
    # Apart, nothing changes; an absent row yields to one in view; equal bottoms keep the order.
    (a, b), met = arbitrate([near, np.zeros_like(near)], [None, 10.0])
    assert not met and (a == near).all()
    assert nearest_first([None, 10.0]) == [1, 0] and nearest_first([5.0, 5.0]) == [0, 1]
    assert frame_ranges([4, 2, 3, 9]) == "3-5, 10"


def _body(characters, picks, **settings) -> dict:
    cast = [
        {"person": list(p), "person_frame": f, "character_path": str(c)}
        for c, (p, f) in zip(characters, picks, strict=True)
    ]
    return {"settings": {**SETTINGS, **settings, "cast": cast}}


def test_a_cast_is_refused_where_it_cannot_run(astronaut_png):
    clip = {"clip_path": str(astronaut_png)}
    rows = [((0.2, 0.5), 0), ((0.8, 0.5), 0)]
    with pytest.raises(RequestError, match="Wan2.2-Animate"):
        JobRequest.from_json(
            {**clip, **_body([astronaut_png] * 2, rows, engine="wan-animate-2", mode="animate")}
        )
    with pytest.raises(RequestError, match="replace mode"):
        JobRequest.from_json({**clip, **_body([astronaut_png] * 2, rows, mode="animate")})
    with pytest.raises(RequestError, match="the same"):
        JobRequest.from_json({**clip, **_body([astronaut_png] * 2, [rows[0], rows[0]])})
    with pytest.raises(RequestError, match="row 2 needs its character"):
        body = _body([astronaut_png] * 2, rows)
        del body["settings"]["cast"][1]["character_path"]
        JobRequest.from_json({**clip, **body})
    # Without a job-level character: each row brings its own.
    req = JobRequest.from_json({**clip, **_body([astronaut_png] * 2, rows)})
    assert len(req.settings.cast) == 2 and req.character_path is None


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The clip, the answer key and each person's rendered silhouette per frame."""
    folder = tmp_path_factory.mktemp("cast")
    clip, truth = render_clip(folder, "two", PEOPLE, W, H, FRAMES, distance=4.6, silhouettes=True)
    silhouettes = np.stack(
        [
            [
                np.asarray(Image.open(folder / "two" / f"silhouette_{p}_{f:04d}.png"))[..., 3] > 0
                for f in range(FRAMES)
            ]
            for p in range(len(PEOPLE))
        ]
    )
    characters = []
    for n, flip in enumerate((False, True)):
        from skimage.data import astronaut

        img = astronaut()[:, ::-1] if flip else astronaut()
        characters.append(folder / f"character_{n}.png")
        Image.fromarray(np.ascontiguousarray(img)).save(characters[-1])
    return clip, truth, silhouettes, characters


def _picks(truth) -> list[tuple[tuple[float, float], int]]:
    """A click on each person's hips, on the frame each is picked on (row 2 on a later frame)."""
    out = []
    for person, frame in ((0, 0), (1, 6)):
        j = truth[frame][person]
        out.append((((j[11][0] + j[12][0]) / 2 / W, (j[11][1] + j[12][1]) / 2 / H), frame))
    return out


@pytest.fixture(scope="module")
def backend(tmp_path_factory, backend_python, tiny_model):
    b = BackendProc(backend_python, tmp_path_factory.mktemp("data"), tiny_model)
    yield b
    b.stop()


@pytest.fixture(scope="module")
def cast_run(backend, scene):
    clip, truth, _sil, characters = scene
    body = {"clip_path": str(clip), **_body(characters, _picks(truth))}
    r = backend.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    t0 = time.perf_counter()
    st, seen = backend.wait(r.json()["id"], timeout=600)
    assert st["state"] == "done", st
    took = time.perf_counter() - t0
    print(f"cast of 2, {FRAMES} frames at {W}x{H}, 4 windows x 2 steps a pass: {took:.1f} s")
    return Path(st["result_dir"]), seen, took, body


def _mask(result: Path, n: int) -> np.ndarray:
    return np.asarray(Image.open(result / "mask" / f"mask_{n + 1:06d}.png").convert("L")) > 0


def test_each_pass_masks_its_own_performer_and_not_the_other(cast_run, scene):
    result, _seen, _t, _body = cast_run
    _clip, _truth, silhouettes, _chars = scene
    job = result_json(result)
    assert [p["folder"] for p in job["cast"]] == ["cast_1", "cast_2"]
    coverage = np.zeros((2, 2, FRAMES))  # [pass, person, frame]
    for k in range(2):
        for f in range(FRAMES):
            mask = _mask(result / f"cast_{k + 1}", f)  # same size and rate: model frame f is clip frame f
            for p in range(2):
                coverage[k, p, f] = (mask & silhouettes[p, f]).sum() / silhouettes[p, f].sum()
    assert coverage[0, 0].min() >= 0.95 and coverage[1, 1].min() >= 0.95, coverage
    assert coverage[0, 1].max() < 0.05 and coverage[1, 0].max() < 0.05, coverage
    # Apart all along: no pass's mask reaches into another's, and nothing to warn of.
    assert not any((_mask(result / "cast_1", f) & _mask(result / "cast_2", f)).any() for f in range(FRAMES))
    assert job["cast_warnings"] == []
    print(
        f"cast mask coverage own min {coverage[[0, 1], [0, 1]].min():.3f}, other max "
        f"{coverage[[0, 1], [1, 0]].max():.3f}"
    )


def test_a_missing_character_of_a_row_is_refused_at_submit_naming_the_row(backend, scene, tmp_path):
    clip, truth, _sil, characters = scene
    body = {"clip_path": str(clip), **_body([characters[0], tmp_path / "gone.png"], _picks(truth))}
    r = backend.post("/v1/jobs", json=body)
    assert r.status_code == 400, r.text
    assert "character image of cast row 2" in r.text and "gone.png" in r.text


def test_a_remote_client_gets_every_pass_with_the_result(backend, cast_run):
    result, seen = cast_run[0], cast_run[1]
    job_id = seen[-1]["id"]
    files = backend.get(f"/v1/jobs/{job_id}/files").json()["files"]
    for k in (1, 2):
        # Each pass's own job.json marks its folder as the cast's, not as another job's result.
        assert f"cast_{k}/job.json" in files, files
        r = backend.get(f"/v1/jobs/{job_id}/files/cast_{k}/job.json")
        assert r.status_code == 200 and r.content == (result / f"cast_{k}" / "job.json").read_bytes()


def test_pass_two_reads_the_plate_pass_one_made(cast_run):
    result, seen, _t, _body = cast_run
    one, two = result / "cast_1", result / "cast_2"
    for f in (0, FRAMES // 2, FRAMES - 1):
        name = f"{f + 1:06d}.png"
        made = np.asarray(Image.open(one / f"frame_{name}").convert("RGB"))
        background = np.asarray(Image.open(two / "background" / f"background_{name}").convert("RGB"))
        keep = ~_mask(two, f)
        # Outside pass 2's mask its background is pass 1's output, pixel for pixel.
        assert (background[keep] == made[keep]).all()
        assert (background[~keep] == 0).all()
    # The job's frames are the last pass's; each pass keeps its own job.json and pick.
    assert (result_frames(result) == result_frames(two)).all()
    job, first = result_json(result), result_json(one)
    assert job["cast"][1]["plate_sha256"] != job["cast"][0]["plate_sha256"]
    assert first["settings"]["person"] == job["settings"]["cast"][0]["person"]
    messages = [s["message"] for s in seen]
    assert any(m.startswith("Cast 2 of 2, window") and "step" in m for m in messages), messages[-20:]


def _store_of_pass(data: Path, k: int) -> Path | None:
    for key in (data / "windows").glob("*/key.json"):
        try:
            if json.loads(key.read_text()).get("cast", {}).get("cast_pass") == k:
                return key.parent
        except (OSError, ValueError):
            continue
    return None


def _wait_for_pass_two_window(data: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        store = _store_of_pass(data, 1)
        if store is not None and (store / "window_0000.npy").is_file():
            return
        time.sleep(0.002)
    raise AssertionError("pass 2 never finished a window")


def test_a_cancel_in_pass_two_stops_within_a_step_and_leaves_no_result(backend, cast_run):
    _result, _seen, _t, body = cast_run
    job_id = backend.post("/v1/jobs", json=body).json()["id"]
    _wait_for_pass_two_window(backend.data_dir)
    t0 = time.monotonic()
    backend.post(f"/v1/jobs/{job_id}/cancel")
    st, _ = backend.wait(job_id)
    assert st["state"] == "cancelled", st
    assert time.monotonic() - t0 < 10
    assert not st.get("result_dir")
    assert not list((backend.data_dir / "results").glob(f".{job_id}*"))  # no partial folder left


def test_a_crash_in_pass_two_resumes_there_with_the_same_frames(
    tmp_path, backend_python, tiny_model, cast_run
):
    result, _seen, _t, body = cast_run
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        job_id = b.post("/v1/jobs", json=body).json()["id"]
        _wait_for_pass_two_window(tmp_path / "data")
        os.kill(b.proc.pid, signal.SIGKILL)  # as if the machine lost power, mid pass 2
    finally:
        b.proc.wait()
        b.log.close()
    b2 = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        assert b2.get(f"/v1/jobs/{job_id}").json()["state"] == "failed"
        again = b2.run_job(body)
    finally:
        b2.stop()
    job = result_json(again)
    first, second = job["cast"]
    assert first["resumed_windows"] == first["windows"]  # pass 1 read back whole
    assert 1 <= second["resumed_windows"] < second["windows"]
    assert (result_frames(again) == result_frames(result)).all()


def test_the_clip_check_resolves_every_row_and_refuses_two_on_one_person(backend, scene):
    clip, truth, _sil, characters = scene
    picks = _picks(truth)
    body = {"clip_path": str(clip), **_body(characters, picks)}
    rep = backend.post("/v1/check", json=body).json()
    assert rep["ok"], rep
    for person, row in enumerate(rep["cast"]):
        x1, y1, x2, y2 = row["box"]
        hips = truth[row["clip_frame"]][person][11]
        assert x1 <= hips[0] <= x2 and y1 <= hips[1] <= y2, (person, row["box"])
    # The faces are a few pixels tall here: each row is told, by its number.
    assert any(w.startswith("Cast row 1:") and "face" in w for w in rep["warnings"]), rep["warnings"]
    assert any(w.startswith("Cast row 2:") and "face" in w for w in rep["warnings"]), rep["warnings"]
    # Row 2 on the first performer too (their shoulders, not their hips): refused, naming both rows.
    j = truth[0][0]
    shoulders = ((j[5][0] + j[6][0]) / 2 / W, (j[5][1] + j[6][1]) / 2 / H)
    same = {"clip_path": str(clip), **_body(characters, [picks[0], (shoulders, 0)])}
    rep = backend.post("/v1/check", json=same).json()
    assert not rep["ok"] and "rows 1 and 2 pick the same person" in rep["error"], rep
    # A row on nobody fails the check with its row named.
    nobody = {"clip_path": str(clip), **_body(characters, [picks[0], ((0.5, 0.05), 0)])}
    rep = backend.post("/v1/check", json=nobody).json()
    assert not rep["ok"] and rep["error"].startswith("Cast row 2:"), rep


def test_where_two_masks_meet_the_nearer_performer_keeps_the_overlap_and_is_warned_of(
    backend, scene, tmp_path
):
    _clip, _truth, _sil, characters = scene
    # Side by side, close enough that the regenerated boxes around them meet; blue nearer.
    close = [
        {"shirt": BLUE, "start": [-0.45, -0.3], "end": [-0.45, -0.3]},
        {"shirt": RED, "start": [0.45, 0.3], "end": [0.45, 0.3], "phase": 0.25},
    ]
    frames = 5
    clip, truth = render_clip(tmp_path, "close", close, W, H, frames, distance=4.6, silhouettes=True)
    sil = [
        [
            np.asarray(Image.open(tmp_path / "close" / f"silhouette_{p}_{f:04d}.png"))[..., 3] > 0
            for f in range(frames)
        ]
        for p in range(2)
    ]
    picks = []
    for person in (1, 0):  # the farther performer's row first: the order is not what decides
        j = truth[0][person]
        picks.append((((j[11][0] + j[12][0]) / 2 / W, (j[11][1] + j[12][1]) / 2 / H), 0))
    result = backend.run_job({"clip_path": str(clip), **_body(characters, picks, segment_frames=5, steps=1)})
    job = result_json(result)
    (warning,) = job["cast_warnings"]
    assert "rows 1 and 2 overlap on clip frames" in warning and "nearer" in warning
    for f in range(frames):
        far, near = _mask(result / "cast_1", f), _mask(result / "cast_2", f)
        assert not (far & near).any()  # one pass alone regenerates each pixel
        assert (near & sil[0][f]).sum() >= 0.95 * sil[0][f].sum()  # the nearer one kept whole
        assert not (far & sil[0][f]).any()  # the farther one's pass never paints over them


def test_a_remote_cast_sends_a_character_named_twice_once(backend, scene):
    """The add-on's job session against a remote backend: row 1's character is the job's own,
    so the clip and the two characters make three uploads, not four."""
    clip, truth, _sil, characters = scene
    ext = extension_package()
    protocol, core = ext.backend.protocol, ext.wan_animate_blender.core
    rows = [
        {"person": list(p), "person_frame": f, "character_path": str(characters[n])}
        for n, (p, f) in enumerate(_picks(truth))
    ]
    req = protocol.JobRequest(settings=protocol.JobSettings(**SETTINGS, cast=rows), name="remote-cast")
    uploads = backend.data_dir / "uploads"
    before = set(uploads.iterdir()) if uploads.is_dir() else set()
    client = core.client.BackendClient(backend.url, backend.token)
    session = core.job_session.JobSession(req, characters[0], clip, remote=client)
    session.start()
    deadline = time.monotonic() + 120
    while session.state.stage in ("starting backend", "uploading") and not session.state.finished:
        assert time.monotonic() < deadline, session.state
        time.sleep(0.05)
    session.cancel()
    session._thread.join(60)
    sent = set(uploads.iterdir()) - before
    assert len(sent) == 3, sorted(p.name for p in sent)
    assert req.character_upload == req.settings.cast[0]["character_upload"]
    assert req.settings.cast[1]["character_upload"] != req.character_upload
