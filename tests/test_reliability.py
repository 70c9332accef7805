"""What users and networks throw at the backend: bad requests, a fuzzer, locks, a corrupt
database, a second backend, a full disk, a kill mid-job. For each: the message, no lost
or overwritten file, and the next job still runs."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from backend_proc import BackendProc, result_json
from conftest import run_blender

SETTINGS = {"width": 64, "height": 48, "steps": 2, "segment_frames": 17, "overlap": 1}


@pytest.fixture(scope="module")
def shared(tmp_path_factory, backend_python, tiny_model):
    """One backend for the checks that leave it as they found it."""
    b = BackendProc(backend_python, tmp_path_factory.mktemp("shared") / "data", tiny_model)
    yield b
    b.stop()


def body(character, clip, **kw):
    settings = {**SETTINGS, **kw.pop("settings", {})}
    return {"character_path": str(character), "clip_path": str(clip), "settings": settings, **kw}


def wait_for(b: BackendProc, job_id: str, pred, timeout: float = 300) -> dict:
    st, _ = b.wait(job_id, until=pred, timeout=timeout)
    return st


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_requests_are_refused_naming_the_field_and_the_backend_lives_on(
    shared, astronaut_png, carphone_clip
):
    pid = shared.get("/v1/health").json()["pid"]
    good = body(astronaut_png, carphone_clip)
    cases = [
        ({**good, "settings": {**SETTINGS, "width": 32768, "height": 16}}, "settings.width"),
        ({**good, "settings": {**SETTINGS, "width": 2048, "height": 16}}, "too narrow"),
        ({**good, "settings": {**SETTINGS, "width": 16384, "height": 16384}}, "settings.width"),
        ({**good, "settings": {**SETTINGS, "width": "64"}}, "settings.width"),
        ({**good, "settings": {**SETTINGS, "height": None}}, "settings.height"),
        ({**good, "settings": 5}, "settings must be a JSON object"),
        ({**good, "settings": {**SETTINGS, "steps": 2.5}}, "settings.steps"),
        ({**good, "settings": {**SETTINGS, "seed": math.nan}}, "settings.seed"),
        ({**good, "settings": {**SETTINGS, "segment_frames": 4001}}, "settings.segment_frames"),
        ({**good, "settings": {**SETTINGS, "prompt": "x" * 50_000}}, "settings.prompt"),
        ({**good, "settings": {**SETTINGS, "colour_match": 1}}, "settings.colour_match"),
        ({**good, "settings": {**SETTINGS, "loras": [{"path": ["a"]}]}}, "settings.loras"),
        ({**good, "name": 123}, "name must be text"),
        ({**good, "clip_path": [str(carphone_clip)]}, "clip_path"),
        ({**good, "clip_path": "relative/clip.mp4"}, "clip_path must be an absolute path"),
        ({**good, "output_dir": "out"}, "output_dir must be an absolute path"),
        ({**good, "character_path": str(astronaut_png) + "\x00.png"}, "character_path"),
        ({**good, "clip_upload": "../../jobs.sqlite3"}, "clip_upload"),
        ({**good, "clip_path": None, "clip_upload": "0" * 32 + ".mp4"}, "unknown"),
        ([good], "JSON object"),
        (None, "JSON object"),
    ]
    for payload, fragment in cases:
        r = shared.post("/v1/jobs", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (fragment, r.status_code, r.text[:300])
        assert fragment in r.json()["detail"], (fragment, r.json()["detail"][:300])
    r = shared.post("/v1/jobs", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
    health = shared.get("/v1/health").json()
    assert health["pid"] == pid and health["status"] == "ok" and health["worker_alive"]
    assert health["queued"] == 0  # nothing bad was queued


def test_fuzzing_the_openapi_schema_finds_no_server_error(shared, tmp_path, backend_python):
    spec = shared.get("/openapi.json").json()
    req_schema = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    for field in ("character_path", "clip_path", "clip_upload", "output_dir", "name", "settings"):
        assert field in req_schema["properties"], field
    for setting in ("retarget", "estimator", "person", "relight_strength", "memory_mode", "loras"):
        assert setting in req_schema["properties"]["settings"]["properties"], setting
    assert "400" in spec["paths"]["/v1/jobs"]["post"]["responses"]
    cli = Path(backend_python).with_name("schemathesis")
    proc = subprocess.run(
        [
            str(cli),
            "run",
            f"{shared.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {shared.token}",
            "--max-examples",
            "25",
            "--exclude-path",
            "/v1/shutdown",
            "--checks",
            "all",
            # Schema-valid jobs name files that do not exist; refusing them with 400 is right.
            "--exclude-checks",
            "positive_data_acceptance",
            "--seed",
            "20261202",
            "--max-failures",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    counts = re.search(r"(\d+) generated, (\d+) passed", out)
    print(out[-1500:])
    assert proc.returncode == 0, out[-6000:]
    assert counts and int(counts.group(1)) >= 200 and counts.group(1) == counts.group(2), out[-3000:]
    assert shared.get("/v1/health").json()["worker_alive"]


def test_uploads_odd_names_empty_bodies_aborts_and_files_paths(shared, carphone_clip):
    r = shared.post("/v1/uploads", data=b"12345", headers={"X-Filename": "a" * 300 + ".mp4"})
    assert r.status_code == 200 and r.json()["upload_id"].endswith(".mp4")
    r = shared.post("/v1/uploads", data=b"", headers={"X-Filename": "empty.mp4"})
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    uploads = shared.data_dir / "uploads"
    before = set(os.listdir(uploads))
    # A client that promises 1 MB and goes away after 1 KB.
    host, port = shared.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            (
                f"POST /v1/uploads HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {shared.token}\r\n"
                "Content-Length: 1000000\r\nX-Filename: cut.mp4\r\n\r\n"
            ).encode()
            + b"x" * 1024
        )
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while set(os.listdir(uploads)) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(os.listdir(uploads)) == before, "an aborted upload left a file behind"
    assert shared.get("/v1/jobs/nope/files/%00").status_code == 404
    assert shared.get("/v1/health").json()["status"] == "ok"


def test_host_header_private_ready_file_and_tokens_file(tmp_path, backend_python, tiny_model):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# studio users\nana ana-token-0123456789 admin\nbo bo-token-0123456789abc\n")
    tokens.chmod(0o600)
    b = BackendProc(
        backend_python,
        tmp_path / "data",
        tiny_model,
        token="ana-token-0123456789",
        extra_args=["--tokens-file", str(tokens)],
    )
    try:
        ready = tmp_path / "data" / "ready.json"
        assert stat.S_IMODE(ready.stat().st_mode) == 0o600
        assert b.get("/v1/health").status_code == 200
        bo = requests.get(
            b.url + "/v1/health", headers={"Authorization": "Bearer bo-token-0123456789abc"}, timeout=10
        )
        assert bo.status_code == 200
        # The per-launch token from the environment is not accepted when a tokens file is given.
        other = requests.get(b.url + "/v1/health", headers={"Authorization": "Bearer test-token"}, timeout=10)
        assert other.status_code == 401
        # DNS rebinding: a page served from evil.example that resolves to 127.0.0.1.
        evil = b.get("/v1/health", headers={"Host": f"evil.example:{b.url.rsplit(':', 1)[1]}"})
        assert evil.status_code == 421
        assert b.get("/v1/health", headers={"Host": "localhost"}).status_code == 200
    finally:
        b.stop()


def test_tls_and_confined_paths_for_remote_use(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    shots = tmp_path / "shots"
    shots.mkdir()
    inside, face = shots / "clip.mp4", shots / "character.png"
    shutil.copy(carphone_clip, inside)
    shutil.copy(astronaut_png, face)
    b = BackendProc(
        backend_python,
        tmp_path / "data",
        tiny_model,
        extra_args=["--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--allowed-root", str(shots)],
    )
    try:
        assert b.url.startswith("https://")
        b.s.trust_env = False  # the machine's CA bundle variables would override verify
        b.s.verify = str(cert)
        assert b.get("/v1/health").json()["status"] == "ok"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(b.url + "/v1/health", timeout=10)  # not trusted without the certificate
        out = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip))
        assert out.status_code == 400 and "outside the folders" in out.json()["detail"]
        out = b.post("/v1/jobs", json=body(face, inside, output_dir=str(tmp_path / "elsewhere")))
        assert out.status_code == 400 and "output_dir" in out.json()["detail"]
        sneaky = str(shots / ".." / "data" / "jobs.sqlite3")
        out = b.post("/v1/jobs", json={**body(face, inside), "keypoints_path": sneaky})
        assert out.status_code == 400 and "outside the folders" in out.json()["detail"]
        out = b.post("/v1/jobs", json=body(face, inside, output_dir=str(shots / "renders")))
        assert out.status_code == 201, out.text
        b.post(f"/v1/jobs/{out.json()['id']}/cancel")
    finally:
        b.stop()


def test_a_locked_database_is_waited_out_and_a_corrupt_row_is_skipped(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    data = tmp_path / "data"
    b = BackendProc(backend_python, data, tiny_model)
    try:
        job = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, settings={"steps": 6})).json()["id"]
        wait_for(b, job, lambda st: st["stage"] == "denoising" or st["state"] in ("done", "failed"))
        # Another program (a backup tool, a sync client) holds the database for 6 s mid-job.
        other = sqlite3.connect(str(data / "jobs.sqlite3"), isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        t0 = time.monotonic()
        polls = []
        while time.monotonic() - t0 < 6:
            polls.append(b.get(f"/v1/jobs/{job}").status_code)
            time.sleep(0.3)
        second: dict = {}
        submit = threading.Thread(
            target=lambda: second.update(b.post("/v1/jobs", json=body(astronaut_png, carphone_clip)).json())
        )
        submit.start()
        time.sleep(1.0)
        other.execute("ROLLBACK")
        other.close()
        submit.join(60)
        assert 200 in polls  # the running job's status came from memory while the file was locked
        st = wait_for(b, job, lambda st: st["state"] in ("done", "failed", "cancelled"))
        assert st["state"] == "done", st
        st2 = wait_for(b, second["id"], lambda st: st["state"] in ("done", "failed", "cancelled"))
        assert st2["state"] == "done", st2
        assert b.get("/v1/health").json()["worker_alive"]
    finally:
        b.stop()
    db = sqlite3.connect(str(data / "jobs.sqlite3"), isolation_level=None)
    db.execute("INSERT INTO jobs (id, created, request, status, state) VALUES ('bad', 1, '{', '{', 'queued')")
    db.close()
    b = BackendProc(backend_python, data, tiny_model)
    try:
        health = b.get("/v1/health").json()
        assert health["unreadable_jobs"] == 1 and health["worker_alive"]
        ids = [j["id"] for j in b.get("/v1/jobs").json()]
        assert job in ids and "bad" not in ids
        third = b.run_job(body(astronaut_png, carphone_clip))
        assert (third / "job.json").is_file()
    finally:
        b.stop()


def test_one_backend_per_data_folder(tmp_path, backend_python, tiny_model):
    data = tmp_path / "data"
    b = BackendProc(backend_python, data, tiny_model)
    try:
        port = b.url.rsplit(":", 1)[1]
        proc = subprocess.run(
            [
                backend_python,
                "-m",
                "backend",
                "serve",
                "--data-dir",
                str(data),
                "--model-dir",
                str(tiny_model),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
        )
        assert proc.returncode == 3
        assert f"pid {b.proc.pid}, port {port}" in proc.stderr and "--data-dir" in proc.stderr
        assert b.get("/v1/health").json()["status"] == "ok"
    finally:
        b.stop()


def test_missing_model_folder_is_named_in_health_and_in_the_job(
    tmp_path, backend_python, astronaut_png, carphone_clip
):
    b = BackendProc(backend_python, tmp_path / "data", tmp_path / "no-model")
    try:
        health = b.get("/v1/health").json()
        assert health["status"] == "degraded"
        assert (
            "no-model" in health["model_dir_problem"]
            and "python -m backend download" in health["model_dir_problem"]
        )
        r = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip))
        st = wait_for(b, r.json()["id"], lambda st: st["state"] in ("done", "failed"))
        assert st["state"] == "failed" and "does not exist" in st["error"] and "download" in st["error"]
    finally:
        b.stop()


def test_paged_job_list_and_results_nested_in_another_result(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        first = b.run_job(body(astronaut_png, carphone_clip, settings={"clip_frames": 20}))
        files_before = b.get(f"/v1/jobs/{result_json(first)['job_id']}/files").json()["files"]
        # An artist points a second shot's output into the first shot's folder.
        nested = b.run_job(
            body(astronaut_png, carphone_clip, output_dir=str(first), settings={"clip_frames": 20})
        )
        assert nested.parent == first
        files_after = b.get(f"/v1/jobs/{result_json(first)['job_id']}/files").json()["files"]
        assert files_after == files_before
        nested_name = f"{nested.name}/job.json"
        assert b.get(f"/v1/jobs/{result_json(first)['job_id']}/files/{nested_name}").status_code == 404
        assert not list(first.parent.glob(".*.partial")) and not list(first.glob(".*.partial"))
        ids = [b.post("/v1/jobs", json=body(astronaut_png, carphone_clip)).json()["id"] for _ in range(3)]
        for i in ids:
            b.post(f"/v1/jobs/{i}/cancel")
        page1 = b.get("/v1/jobs", params={"limit": 2}).json()
        page2 = b.get("/v1/jobs", params={"limit": 2, "after": page1[-1]["id"]}).json()
        page3 = b.get("/v1/jobs", params={"limit": 2, "after": page2[-1]["id"]}).json()
        listed = [j["id"] for j in page1 + page2 + page3]
        assert len(page1) == 2 and len(page2) == 2 and len(page3) == 1
        assert listed[2:] == ids and len(set(listed)) == 5
    finally:
        b.stop()


def _mount_tmpfs(path: Path, size: str) -> bool:
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]).returncode == 0


def test_a_full_disk_fails_the_job_with_the_cause_and_leaves_nothing_half_written(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "200m"):
        pytest.skip("needs root to mount a small tmpfs as a full disk")
    try:
        tiny_disk = tmp_path / "tiny_disk"
        mounted_tiny = _mount_tmpfs(tiny_disk, "1m")
        b = BackendProc(backend_python, tmp_path / "data", tiny_model)
        try:
            if mounted_tiny:
                r = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, output_dir=str(tiny_disk)))
                st = wait_for(b, r.json()["id"], lambda st: st["state"] in ("done", "failed"))
                assert st["state"] == "failed" and "GB free" in st["error"], st
            artist = disk / "artist_notes.txt"
            artist.write_text("artist's file")
            r = b.post(
                "/v1/jobs",
                json=body(astronaut_png, carphone_clip, output_dir=str(disk), settings={"steps": 8}),
            )
            job = r.json()["id"]
            wait_for(b, job, lambda st: st["stage"] == "denoising" or st["state"] in ("done", "failed"))
            # Something else fills the disk while the job computes.
            filler = disk / "filler.bin"
            try:
                with open(filler, "wb") as f:
                    while True:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
            except OSError:
                pass  # full
            st = wait_for(b, job, lambda st: st["state"] in ("done", "failed"))
            assert st["state"] == "failed", st
            assert "disk" in st["error"] and "frame" in st["error"], st["error"]
            assert sorted(p.name for p in disk.iterdir()) == ["artist_notes.txt", "filler.bin"]
            assert artist.read_text() == "artist's file"
            filler.unlink()
            again = b.run_job(body(astronaut_png, carphone_clip, output_dir=str(disk), settings={"steps": 8}))
            assert result_json(again)["resumed_windows"] > 0  # the computed windows were kept
            assert b.get("/v1/health").json()["worker_alive"]
        finally:
            b.stop()
            if mounted_tiny:
                subprocess.run(["umount", str(tiny_disk)])
    finally:
        subprocess.run(["umount", str(disk)])


def _results_are_whole(results: Path) -> None:
    for d in results.iterdir() if results.exists() else ():
        assert not d.name.endswith(".partial"), d
        assert (d / "job.json").is_file(), f"{d} has no job.json"


def test_kill_9_in_preprocessing_in_a_window_and_while_writing_then_the_next_job_runs(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    data = tmp_path / "data"
    # Writing: 961 output frames (the clip at 240 fps), so the kill lands while they are written.
    cases = (("preprocessing", {}), ("denoising", {}), ("writing", {"output_fps": 240.0}))
    for stage, extra in cases:
        b = BackendProc(backend_python, data, tiny_model)
        try:
            settings = {"steps": 8, **extra}
            job = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, settings=settings)).json()["id"]
            wait_for(
                b,
                job,
                lambda st, stage=stage: (
                    (st["stage"] == stage and (stage != "denoising" or st["window"] >= 3))
                    or st["state"] in ("done", "failed")
                ),
            )
            b.proc.kill()
            b.proc.wait()
            if stage == "writing":
                # Cut mid-write: only a hidden partial folder, never a result that looks finished.
                assert list((data / "results").glob(".*.partial")), "the kill did not land while writing"
        finally:
            b.stop()
        b = BackendProc(backend_python, data, tiny_model)
        try:
            st = b.get(f"/v1/jobs/{job}").json()
            assert (
                st["state"] == "failed" and st["stage"] == "interrupted" and "Submit it again" in st["error"]
            ), (stage, st)
            _results_are_whole(data / "results")
        finally:
            b.stop()
    b = BackendProc(backend_python, data, tiny_model)
    try:
        result = b.run_job(body(astronaut_png, carphone_clip, settings={"steps": 8}))
        assert result_json(result)["resumed_windows"] > 0
        _results_are_whole(data / "results")
    finally:
        b.stop()


@pytest.mark.parametrize("bl", ["5.0"])
def test_blender_waits_out_a_remote_backend_restart_and_resumes_its_job(
    bl, tmp_path, backend_python, tiny_model, extension_zip, carphone_clip
):
    data, port = tmp_path / "remote-data", free_port()
    holder = {"b": BackendProc(backend_python, data, tiny_model, token="remote-secret", port=port)}
    killed = threading.Event()

    def kill_and_restart() -> None:
        b = holder["b"]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            jobs = b.get("/v1/jobs").json()
            st = b.get(f"/v1/jobs/{jobs[-1]['id']}").json() if jobs else {}
            if st.get("stage") == "denoising" and st["window"] >= 3:
                b.proc.kill()
                b.proc.wait()
                b.stop()
                killed.set()
                time.sleep(3)  # the add-on's polls fail meanwhile
                holder["b"] = BackendProc(backend_python, data, tiny_model, token="remote-secret", port=port)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_and_restart, daemon=True)
    watcher.start()
    try:
        r = run_blender(
            bl,
            "generate.py",
            {
                "zip": extension_zip,
                "backend_python": backend_python,
                "model_dir": str(tiny_model),
                "output_dir": str(tmp_path / "out"),
                "clip": str(carphone_clip),
                "remote_url": f"http://127.0.0.1:{port}",
                "remote_token": "remote-secret",
                "settings": {"steps": 6},
            },
            tmp_path,
        )
        watcher.join(30)
        assert killed.is_set(), "the backend was never killed mid-job"
        assert r["op_result"] == ["FINISHED"], r["status"]
        (strip,) = r["new_strips"]
        assert strip["missing"] == []
        jobs = holder["b"].get("/v1/jobs").json()
        assert [j["state"] for j in jobs] == ["failed", "done"]
        assert jobs[0]["stage"] == "interrupted"
        assert result_json(Path(jobs[1]["result_dir"]))["resumed_windows"] >= 2
    finally:
        holder["b"].stop()
