"""What one request may cost the backend: inputs measured from their headers before a pixel is
decoded, JSON the parser could choke on, numbers no float holds, a damaged jobs database. Each
refusal is quick, names what to change, and leaves the backend answering."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from backend_proc import ROOT, BackendProc
from PIL import Image

SETTINGS = {"width": 64, "height": 48, "steps": 1, "segment_frames": 17}


@pytest.fixture(scope="module")
def backend(tmp_path_factory, backend_python, tiny_model):
    b = BackendProc(backend_python, tmp_path_factory.mktemp("limits") / "data", tiny_model)
    yield b
    b.stop()


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut_png, carphone_clip) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("limits_media")
    out = {"character": astronaut_png, "clip": carphone_clip}
    out["wide_png"] = d / "wide.png"  # a few hundred bytes that decode to 10000x10
    Image.new("RGB", (10000, 10)).save(out["wide_png"])
    out["wide_movie"] = d / "wide.avi"
    w = cv2.VideoWriter(str(out["wide_movie"]), cv2.VideoWriter_fourcc(*"MJPG"), 30, (10000, 16))
    for _ in range(3):
        w.write(np.zeros((16, 10000, 3), np.uint8))
    w.release()
    out["sliver"] = d / "sliver.png"  # under every side bound, but 400 times wider than tall
    Image.new("RGB", (4000, 10)).save(out["sliver"])
    seq = d / "seq"
    seq.mkdir()
    for i in range(1, 4):
        Image.new("RGB", (8200, 64)).save(seq / f"plate_{i:04d}.png")
    out["big_sequence"] = seq
    raw = astronaut_png.read_bytes()
    out["truncated"] = d / "truncated.png"
    out["truncated"].write_bytes(raw[: len(raw) // 2])
    out["exr"] = d / "character.exr"
    out["exr"].write_bytes(b"v/1\x01" + b"\x00" * 64)
    out["a_file"] = d / "not_a_folder"
    out["a_file"].write_text("an artist's file")
    return out


def post_json(b: BackendProc, path: str, payload) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    r = b.post(path, data=payload if isinstance(payload, bytes) else json.dumps(payload))
    took = time.perf_counter() - t0
    detail = (
        r.json().get("detail", "") if r.headers.get("content-type", "").startswith("application/json") else ""
    )
    return r.status_code, str(detail), took


def assert_alive(b: BackendProc, pid: int) -> None:
    h = b.get("/v1/health").json()
    assert h["pid"] == pid and h["worker_alive"] and h["queued"] == 0, h


def test_inputs_that_decode_to_more_than_a_job_uses_are_refused_from_their_headers(backend, media):
    pid = backend.get("/v1/health").json()["pid"]
    good = {"character_path": str(media["character"]), "clip_path": str(media["clip"]), "settings": SETTINGS}
    cases = [
        ({"clip_path": str(media["wide_png"])}, "10000x10"),
        ({"clip_path": str(media["wide_movie"])}, "10000x16"),
        ({"clip_path": str(media["sliver"])}, "times the other"),
        ({"clip_path": str(media["big_sequence"])}, "8200x64"),
        ({"character_path": str(media["wide_png"])}, "character image"),
        (
            {"face_path": str(media["wide_png"]), "clip_path": None, "keypoints_path": str(media["a_file"])},
            "face",
        ),
    ]
    up = backend.post("/v1/uploads", data=media["wide_png"].read_bytes(), headers={"X-Filename": "w.png"})
    cases.append(({"clip_path": None, "clip_upload": up.json()["upload_id"]}, "10000x10"))
    for route in ("/v1/jobs", "/v1/check"):
        for change, fragment in cases:
            code, detail, took = post_json(backend, route, {**good, **change})
            assert code == 400, (route, change, code, detail)
            assert fragment in detail, (route, change, detail)
            assert took < 1.0, (route, change, took)
    assert_alive(backend, pid)
    # The check reads the character as the job would: a truncated file or an EXR fails now.
    for bad, fragment in ((media["truncated"], "truncated"), (media["exr"], "Cannot read the character")):
        code, detail, _ = post_json(backend, "/v1/check", {**good, "character_path": str(bad)})
        assert code == 400 and fragment in detail, (bad, code, detail)
    assert_alive(backend, pid)


def test_deep_json_huge_numbers_a_file_as_output_folder_and_a_bad_cursor(backend, media):
    pid = backend.get("/v1/health").json()["pid"]
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_settings = json.dumps({"settings": {"loras": [[[[[[[[[[[]]]]]]]]]]]}}).encode()
    good = {"character_path": str(media["character"]), "clip_path": str(media["clip"]), "settings": SETTINGS}
    huge = 10**400
    cases = [
        (deep, "deeper than"),
        (deep_settings, "deeper than"),
        ({**good, "settings": {**SETTINGS, "guidance_scale": huge}}, "settings.guidance_scale"),
        ({**good, "settings": {**SETTINGS, "steps": huge}}, "settings.steps"),
        ({**good, "settings": {**SETTINGS, "person": [huge, 0.5]}}, "settings.person"),
        ({**good, "settings": {**SETTINGS, "loras": [{"path": "/l.safetensors", "strength": huge}]}}, "LoRA"),
        ({**good, "output_dir": str(media["a_file"])}, "is a file, not a folder"),
    ]
    for route in ("/v1/jobs", "/v1/check"):
        for payload, fragment in cases:
            code, detail, took = post_json(backend, route, payload)
            assert code == 400 and fragment in detail, (route, fragment, code, detail[:300])
            assert took < 1.0, (fragment, took)
    assert media["a_file"].read_text() == "an artist's file"
    r = backend.get("/v1/jobs", params={"after": "f" * 32})
    assert r.status_code == 400 and "no job" in r.json()["detail"], r.text
    assert backend.get("/v1/jobs").status_code == 200
    assert_alive(backend, pid)


def _serve(backend_python: str, data: Path, model: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [backend_python, "-m", "backend", "serve", "--data-dir", str(data), "--model-dir", str(model)]
        + ["--ready-file", str(data / "ready.json"), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(data),
        env=dict(os.environ, PYTHONPATH=str(ROOT), WAN_ANIMATE_TOKEN="test-token"),
    )


def test_a_damaged_jobs_database_starts_nothing_and_says_which_file(tmp_path, backend_python, tiny_model):
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "jobs.sqlite3").write_bytes(os.urandom(8192))
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    db = sqlite3.connect(str(truncated / "jobs.sqlite3"))
    db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, created REAL, request TEXT, status TEXT, state TEXT)")
    db.executemany(
        "INSERT INTO jobs VALUES (?, 0, ?, '{}', 'done')", [(str(i), "x" * 3000) for i in range(40)]
    )
    db.commit()
    db.close()
    raw = (truncated / "jobs.sqlite3").read_bytes()
    (truncated / "jobs.sqlite3").write_bytes(raw[: len(raw) // 2])
    for data in (garbage, truncated):
        before = (data / "jobs.sqlite3").read_bytes()
        proc = _serve(backend_python, data, tiny_model)
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert proc.returncode != 0 and not (data / "ready.json").exists(), proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-2000:]
        assert str(data / "jobs.sqlite3") in lines[0] and "Move it aside" in lines[0], lines
        assert (data / "jobs.sqlite3").read_bytes() == before  # left for the studio to look at
    # Damaged under a running backend (a sync tool wrote over it): each answer says so, no 500.
    b = BackendProc(backend_python, tmp_path / "running", tiny_model)
    try:
        assert b.get("/v1/jobs").status_code == 200
        (tmp_path / "running" / "jobs.sqlite3").write_bytes(os.urandom(8192))
        r = b.get("/v1/jobs")
        assert r.status_code == 503 and "is damaged" in r.json()["detail"], r.text
        health = b.get("/v1/health").json()
        assert health["database"] == "damaged" and health["status"] == "degraded" and health["worker_alive"]
    finally:
        b.stop()


def test_a_held_database_lock_freezes_neither_polls_nor_health(backend, media):
    import sqlite3 as sql
    import threading

    good = {"character_path": str(media["character"]), "clip_path": str(media["clip"])}
    job = backend.post("/v1/jobs", json={**good, "settings": {**SETTINGS, "steps": 8}}).json()["id"]
    backend.wait(
        job,
        until=lambda st: st["stage"] == "denoising" or st["state"] != "running" and st["state"] != "queued",
    )
    auth = {"Authorization": f"Bearer {backend.token}"}
    waiting: list = []
    other = sql.connect(str(backend.data_dir / "jobs.sqlite3"), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program (a backup, a sync client) holds the file
    second: dict = {}
    try:
        submit = threading.Thread(
            target=lambda: second.update(r=backend.post("/v1/jobs", json={**good, "settings": SETTINGS}))
        )
        submit.start()
        time.sleep(1.0)  # the submit now waits on the lock
        took = {}
        for path in ("/openapi.json", "/v1/health", f"/v1/jobs/{job}"):
            t0 = time.perf_counter()
            r = backend.get(path)
            took[path] = time.perf_counter() - t0
            assert r.status_code == 200, (path, r.text[:300])
        health = backend.get("/v1/health").json()
        assert health["status"] == "degraded" and health["database"] == "locked", health
        assert max(took.values()) < 0.5, took
        assert submit.is_alive()  # still waiting: it is the lock that held it, not a failure
        # More listings waiting on the lock than the shared thread pool holds: health still answers.
        waiting = [
            threading.Thread(target=lambda: requests.get(backend.url + "/v1/jobs", headers=auth, timeout=60))
            for _ in range(45)
        ]
        for t in waiting:
            t.start()
        time.sleep(1.0)
        t0 = time.perf_counter()
        assert backend.get("/v1/health").json()["database"] == "locked"
        assert time.perf_counter() - t0 < 0.5
    finally:
        other.execute("ROLLBACK")
        other.close()
    submit.join(60)
    for t in waiting:
        t.join(60)
    assert second["r"].status_code == 201, second["r"].text
    for j in (job, second["r"].json()["id"]):
        backend.post(f"/v1/jobs/{j}/cancel")
        backend.wait(j)
    assert backend.get("/v1/health").json()["database"] == "ok"


def test_concurrent_uploads_cannot_together_pass_the_quota(tmp_path, backend_python, tiny_model):
    from concurrent.futures import ThreadPoolExecutor

    import requests

    quota = 10 << 20
    b = BackendProc(
        backend_python,
        tmp_path / "data",
        tiny_model,
        extra_args=["--upload-quota-gb", str(quota / (1 << 30))],
    )
    try:
        blob = os.urandom(6 << 20)

        def send(_):
            try:
                r = requests.post(
                    b.url + "/v1/uploads",
                    data=blob,
                    headers={"Authorization": f"Bearer {b.token}", "X-Filename": "clip.mp4"},
                    timeout=60,
                )
                return r.status_code
            except requests.ConnectionError:
                return "refused mid-body"

        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(send, range(6)))
        assert codes.count(200) == 1, codes
        assert all(c in (200, 413, "refused mid-body") for c in codes), codes
        kept = [p for p in (b.data_dir / "uploads").iterdir() if p.is_file()]
        assert sum(p.stat().st_size for p in kept) <= quota and len(kept) == 1, kept
        # Chunked (no declared length), past what is left: refused as it streams, nothing kept.
        r = b.post("/v1/uploads", data=iter([blob]), headers={"X-Filename": "more.mp4"})
        assert r.status_code == 413 and "quota" in r.json()["detail"], r.text
        assert len([p for p in (b.data_dir / "uploads").iterdir() if p.is_file()]) == 1
        assert b.get("/v1/health").json()["worker_alive"]
    finally:
        b.stop()


def test_allowed_roots_hold_for_every_frame_lora_and_swapped_link(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    shots, private = tmp_path / "shots", tmp_path / "private"
    shots.mkdir()
    private.mkdir()
    secret = private / "secret.png"
    Image.new("RGB", (64, 48), (255, 0, 0)).save(secret)
    (private / "secret.mp4").write_bytes(carphone_clip.read_bytes())
    character = shots / "character.png"
    character.write_bytes(astronaut_png.read_bytes())
    frames = shots / "plate"
    frames.mkdir()
    Image.new("RGB", (64, 48)).save(frames / "plate_0001.png")
    (frames / "plate_0002.png").symlink_to(secret)  # a frame inside the root that is not
    clip_link = shots / "clip.mp4"
    clip_link.symlink_to(carphone_clip)  # fine now (carphone is copied in below), swapped later
    inside_clip = shots / "real.mp4"
    inside_clip.write_bytes(carphone_clip.read_bytes())
    clip_link.unlink()
    clip_link.symlink_to(inside_clip)
    b = BackendProc(backend_python, tmp_path / "data", tiny_model, extra_args=["--allowed-root", str(shots)])
    try:
        good = {"character_path": str(character), "clip_path": str(inside_clip), "settings": SETTINGS}
        outside = "is outside the folders this backend serves"
        for route in ("/v1/jobs", "/v1/check"):
            code, detail, _ = post_json(b, route, {**good, "clip_path": str(frames)})
            assert code == 400 and outside in detail and "plate_0002" in detail, detail
            # The same answer for a LoRA outside that exists and one that does not.
            answers = []
            for lora in (private / "secret.mp4", private / "none.safetensors"):
                settings = {**SETTINGS, "loras": [{"path": str(lora), "strength": 1.0}]}
                code, detail, _ = post_json(b, route, {**good, "settings": settings})
                assert code == 400 and outside in detail, detail
                answers.append(detail.replace(str(lora), "<path>"))
            assert answers[0] == answers[1], answers
        # A link that pointed inside when the job was queued and outside when it runs.
        busy = b.post("/v1/jobs", json={**good, "settings": {**SETTINGS, "steps": 8}}).json()["id"]
        b.wait(busy, until=lambda st: st["state"] == "running" or st["state"] in ("done", "failed"))
        queued = b.post("/v1/jobs", json={**good, "clip_path": str(clip_link)})
        assert queued.status_code == 201, queued.text
        clip_link.unlink()
        clip_link.symlink_to(private / "secret.mp4")
        b.post(f"/v1/jobs/{busy}/cancel")
        st = b.wait(queued.json()["id"])[0]
        assert st["state"] == "failed" and outside in st["error"], st
        assert st["result_dir"] is None
        assert b.get("/v1/health").json()["worker_alive"]
    finally:
        b.stop()


def test_a_bad_certificate_or_key_starts_nothing_and_names_the_file(tmp_path, backend_python, tiny_model):
    pairs = []
    for n in (1, 2):
        key, cert = tmp_path / f"key{n}.pem", tmp_path / f"cert{n}.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)]
            + ["-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
            check=True,
            capture_output=True,
        )
        pairs.append((cert, key))
    (cert1, key1), (_, key2) = pairs
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    cases = [
        (["--ssl-certfile", str(cert1)], str(cert1), "holds no private key"),
        (["--ssl-certfile", str(cert1), "--ssl-keyfile", str(key2)], str(key2), "does not belong"),
        (["--ssl-certfile", str(garbage), "--ssl-keyfile", str(key1)], str(garbage), "not a PEM certificate"),
    ]
    for n, (args, named, fault) in enumerate(cases):
        data = tmp_path / f"data{n}"
        data.mkdir()
        proc = _serve(backend_python, data, tiny_model, *args)
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert proc.returncode != 0, proc.stderr[-2000:]
        # The add-on waits for the ready file: none may promise an https URL that never answers.
        assert not (data / "ready.json").exists()
        assert len(lines) == 1 and named in lines[0] and fault in lines[0], lines


def test_the_published_schema_is_the_rules_the_backend_applies(backend, media):
    """Whatever /openapi.json allows is accepted (but for the two rules it names in words), and
    what the backend refuses for a range or step the schema refuses too."""
    import jsonschema
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    from backend.protocol import JobRequest, RequestError

    spec = backend.get("/openapi.json").json()
    schema = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator(schema)
    files = {"character_path": str(media["character"]), "clip_path": str(media["clip"])}
    for change in ({"width": 100}, {"overlap": 3}, {"segment_frames": 78}, {"output_fps": 0.5}):
        body = {**files, "settings": {**SETTINGS, **change}}
        assert not validator.is_valid(body), change
        assert backend.post("/v1/jobs", json=body).status_code == 400, change
    strong = {**files, "settings": {"loras": [{"path": "/a.safetensors", "strength": 9}]}}
    assert not validator.is_valid(strong)
    cross_field = ("larger than the backend makes", "too narrow")  # the schema's description says so
    words = schema["properties"]["settings"]["description"]
    assert "pixels" in words and "times the other" in words, words

    refused, accepted = [], []
    operation = schemathesis.openapi.from_dict(spec)["/v1/jobs"]["POST"]

    @given(operation.as_strategy())
    @settings(max_examples=300, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    def schema_valid_is_accepted(case):
        body = {**(case.body or {}), **files}
        for name in ("character_upload", "clip_upload", "keypoints_upload", "face_upload", "keypoints_path"):
            body.pop(name, None)
        body.pop("face_path", None)
        assert validator.is_valid(body)
        try:
            JobRequest.from_json(body)
            accepted.append(body)
        except RequestError as exc:
            refused.append(str(exc))
            assert any(words in str(exc) for words in cross_field), (body, str(exc))

    schema_valid_is_accepted()
    assert len(accepted) >= 100, (len(accepted), refused[:5])
    assert any(b.get("settings", {}).get("segment_frames", 77) != 77 for b in accepted)
