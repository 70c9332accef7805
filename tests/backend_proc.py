"""A real backend subprocess for tests: `python -m backend serve` on a free port."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


class BackendProc:
    def __init__(
        self,
        python: str,
        data_dir: Path,
        model_dir: Path,
        token: str = "test-token",
        ranks: int = 1,
        extra_env: dict[str, str] | None = None,
        port: int = 0,
        extra_args: list[str] | None = None,
    ) -> None:
        self.token = token
        self.data_dir = data_dir
        ready = data_dir / "ready.json"
        ready.unlink(missing_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT), WAN_ANIMATE_TOKEN=token, **(extra_env or {}))
        # Several ranks: the same command under torchrun, as on a multi-GPU machine (gloo on CPU here).
        launch = (
            [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
            if ranks > 1
            else [python]
        )
        self.log = open(data_dir / "backend.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *launch,
                "-m",
                "backend",
                "serve",
                "--data-dir",
                str(data_dir),
                "--model-dir",
                str(model_dir),
                "--ready-file",
                str(ready),
                "--threads",
                "1",
                "--port",
                str(port),
                *(extra_args or []),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(data_dir),
        )
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert self.proc.poll() is None, (data_dir / "backend.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "backend did not start"
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        self.url = info["url"]
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kw):
        return self.s.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, **kw):
        return self.s.post(self.url + path, timeout=30, **kw)

    def wait(
        self,
        job_id: str,
        until=lambda st: st["state"] in ("done", "failed", "cancelled"),
        timeout=300,
        every: float = 0.1,
    ):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            st = self.get(f"/v1/jobs/{job_id}").json()
            seen.append(st)
            if until(st):
                return st, seen
            time.sleep(every)
        raise AssertionError(f"job {job_id} did not reach the state in time: {seen[-1]}")

    def run_job(self, body: dict, timeout: float = 600) -> Path:
        """Submit ``body``, wait for it, and return its result folder; the job must succeed."""
        r = self.post("/v1/jobs", json=body)
        assert r.status_code == 201, r.text
        st, _ = self.wait(r.json()["id"], timeout=timeout)
        assert st["state"] == "done", st
        return Path(st["result_dir"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.post("/v1/shutdown")
                self.proc.wait(timeout=20)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def keypoints_job(b: BackendProc, character, clip, **settings) -> tuple[dict, list, Path]:
    """A small job with the embedded estimator (64x48, one step, one window): what the tests of
    the performer's skeleton read back. Returns job.json, keypoints.json's frames and the result."""
    body = {
        "character_path": str(character),
        "clip_path": str(clip),
        "settings": {
            "width": 64,
            "height": 48,
            "steps": 1,
            "segment_frames": 17,
            "estimator": "mediapipe",
            **settings,
        },
    }
    result = b.run_job(body)
    return result_json(result), result_json(result, "keypoints.json")["frames"], result


def result_frames(result: Path) -> np.ndarray:
    """A job's output frames as one int array (T, H, W, 3), ready for differences."""
    return np.stack([np.asarray(Image.open(p)) for p in sorted(Path(result).glob("frame_*.png"))]).astype(int)


def result_json(result: Path, name: str = "job.json") -> dict:
    return json.loads((Path(result) / name).read_text())
