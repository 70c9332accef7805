"""A studio's users kept apart: with a tokens file each job records who submitted it, and only
they (or an admin) list, read, cancel or fetch it; only an admin stops the backend. A tokens
file others can read, or one token given to two users, starts nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from backend_proc import ROOT, BackendProc

SETTINGS = {"width": 64, "height": 48, "steps": 1, "segment_frames": 17}
ALICE, BOB, BOSS = "alice-token-0123456789", "bob-token-0123456789ab", "boss-token-0123456789ab"


def as_user(b: BackendProc, token: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def test_users_see_and_touch_only_their_own_jobs(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"alice {ALICE}\nbob {BOB}\nboss {BOSS} admin\n")
    tokens.chmod(0o600)
    b = BackendProc(
        backend_python, tmp_path / "data", tiny_model, token=BOSS, extra_args=["--tokens-file", str(tokens)]
    )
    alice, bob, boss = as_user(b, ALICE), as_user(b, BOB), as_user(b, BOSS)
    try:
        body = {"character_path": str(astronaut_png), "clip_path": str(carphone_clip), "settings": SETTINGS}
        job = alice.post(b.url + "/v1/jobs", json=body, timeout=30).json()
        assert job["user"] == "alice"
        st = b.wait(job["id"])[0]
        assert st["state"] == "done", st
        mine = alice.get(b.url + f"/v1/jobs/{job['id']}/files/job.json", timeout=30)
        assert mine.status_code == 200 and job["id"] in mine.text
        # Bob gets nothing of it, and cannot tell it from a job that does not exist.
        assert [j["id"] for j in bob.get(b.url + "/v1/jobs", timeout=30).json()] == []
        for method, path in (
            ("GET", f"/v1/jobs/{job['id']}"),
            ("POST", f"/v1/jobs/{job['id']}/cancel"),
            ("GET", f"/v1/jobs/{job['id']}/files"),
            ("GET", f"/v1/jobs/{job['id']}/files/job.json"),
        ):
            theirs = bob.request(method, b.url + path, timeout=30)
            nobody = bob.request(method, b.url + path.replace(job["id"], "0" * 32), timeout=30)
            assert theirs.status_code == nobody.status_code == 404, (path, theirs.text)
            assert theirs.json()["detail"].replace(job["id"], "") == nobody.json()["detail"].replace(
                "0" * 32, ""
            )
        assert bob.get(b.url + "/v1/jobs", params={"after": job["id"]}, timeout=30).status_code == 400
        bob_health = bob.get(b.url + "/v1/health", timeout=30).json()
        assert bob_health["user"] == "bob" and not bob_health["admin"]
        stop = bob.post(b.url + "/v1/shutdown", timeout=30)
        assert stop.status_code == 403 and "admin" in stop.json()["detail"]
        stop = alice.post(b.url + "/v1/shutdown", timeout=30)
        assert stop.status_code == 403
        assert b.get("/v1/health").json()["worker_alive"]  # still up after both tries
        # Alice sees her own; the admin sees everyone's.
        assert [j["id"] for j in alice.get(b.url + "/v1/jobs", timeout=30).json()] == [job["id"]]
        assert [j["id"] for j in boss.get(b.url + "/v1/jobs", timeout=30).json()] == [job["id"]]
        assert boss.get(b.url + f"/v1/jobs/{job['id']}/files", timeout=30).status_code == 200
    finally:
        b.stop()
    assert b.proc.returncode == 0  # the admin's shutdown was obeyed


@pytest.mark.skipif(sys.platform == "win32", reason="file modes mean little on Windows")
def test_a_shared_token_or_a_readable_tokens_file_starts_nothing(tmp_path, backend_python, tiny_model):
    cases = {
        "shared": (f"alice {ALICE}\nbob {ALICE}\n", 0o600, "same token as alice"),
        "readable": (f"alice {ALICE}\n", 0o644, "readable by other users"),
    }
    for name, (text, mode, fragment) in cases.items():
        data = tmp_path / name
        data.mkdir()
        tokens = data / "tokens.txt"
        tokens.write_text(text)
        tokens.chmod(mode)
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
            ]
            + ["--ready-file", str(data / "ready.json"), "--tokens-file", str(tokens)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(data),
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert proc.returncode != 0 and not (data / "ready.json").exists(), (name, proc.stderr[-2000:])
        assert len(lines) == 1 and fragment in lines[0] and str(tokens) in lines[0], (name, lines)
        assert "Traceback" not in proc.stderr
