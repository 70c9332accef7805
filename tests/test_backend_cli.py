"""The backend's command line, as an artist or a script runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from backend_proc import BackendProc

from backend.env.download import ensure_free_space

ROOT = Path(__file__).resolve().parents[1]


def backend_cli(python: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-m", "backend", *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        cwd=cwd,
        timeout=300,
    )


def test_make_tiny_model_writes_the_diffusers_layout_and_refuses_to_overwrite(tmp_path, backend_python):
    target = tmp_path / "tiny model"
    r = backend_cli(backend_python, "make-tiny-model", str(target), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    index = json.loads((target / "model_index.json").read_text())
    assert index["_class_name"] == "WanAnimatePipeline"
    for part in (
        "transformer",
        "vae",
        "text_encoder",
        "tokenizer",
        "image_encoder",
        "image_processor",
        "scheduler",
    ):
        assert (target / part).is_dir()
    assert json.loads((target / "wan_animate_tiny_model.json").read_text())["tiny_random_model"] is True
    again = backend_cli(backend_python, "make-tiny-model", str(target), cwd=tmp_path)
    assert again.returncode != 0 and "not empty" in again.stderr


def test_download_refuses_early_when_the_disk_is_too_small(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(SystemExit, match="Not enough free disk space"):
        ensure_free_space(tmp_path, free * 2)
    (tmp_path / "part.bin").write_bytes(b"x" * 1000)
    assert ensure_free_space(tmp_path, 5000) == 4000  # what is already there counts (resume)


def test_help_lists_the_commands(backend_python, tmp_path):
    r = backend_cli(backend_python, "--help", cwd=tmp_path)
    for cmd in ("serve", "setup", "download", "make-tiny-model"):
        assert cmd in r.stdout


def test_a_one_frame_clip_still_generates_one_frame(
    tmp_path, backend_python, tiny_model, carphone_clip, astronaut_png
):
    cap = cv2.VideoCapture(str(carphone_clip))
    ok, frame = cap.read()
    cap.release()
    one = tmp_path / "one frame.mp4"
    w = cv2.VideoWriter(str(one), cv2.VideoWriter_fourcc(*"mp4v"), 25, (frame.shape[1], frame.shape[0]))
    w.write(frame)
    w.release()
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        body = {
            "character_path": str(astronaut_png),
            "clip_path": str(one),
            "settings": {"width": 64, "height": 64, "steps": 1, "segment_frames": 13, "overlap": 5},
        }
        st, _ = b.wait(b.post("/v1/jobs", json=body).json()["id"])
    finally:
        b.stop()
    assert st["state"] == "done", st
    assert st["frame_count"] == 1
    assert len(list(Path(st["result_dir"]).glob("frame_*.png"))) == 1


def test_backend_stops_when_its_parent_process_dies(tmp_path, backend_python, tiny_model):
    import os
    import time

    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ready = tmp_path / "ready.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [
            backend_python,
            "-m",
            "backend",
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            "--model-dir",
            str(tiny_model),
            "--ready-file",
            str(ready),
            "--parent-pid",
            str(parent.pid),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists() and child.poll() is None
        parent.kill()
        parent.wait()
        assert child.wait(timeout=30) == 0
    finally:
        for p in (parent, child):
            if p.poll() is None:
                p.kill()
