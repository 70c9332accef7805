"""The weights from the add-on's preferences, against a local stand-in of the model hub that
serves a tiny model in the hub's layout (HF_ENDPOINT points the backend at it): refused while
Blender's online access is off, progress in MB, stopped in the middle of a file and resumed
from where it stopped, and Check naming what is missing, damaged, or of another model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_blender
from hub_standin import HubStandIn

DIFFUSERS = "Wan-AI/Wan2.2-Animate-14B-Diffusers"
ORIGINAL = "Wan-AI/Wan2.2-Animate-14B"
SAM2 = "facebook/sam2.1-hiera-large"
BIG = "transformer/diffusion_pytorch_model.safetensors"
BIG_BYTES = 6_000_000
RATE = 2_000_000  # bytes/s: the big file takes seconds, long enough to stop in its middle


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    rng = __import__("random").Random(0)
    noise = lambda n: rng.randbytes(n)  # noqa: E731
    d = root / "diffusers"
    _put(d / "model_index.json", json.dumps({"_class_name": "WanAnimatePipeline"}).encode())
    for part in ("transformer", "vae", "text_encoder", "image_encoder"):
        _put(d / part / "config.json", b"{}")
    _put(d / BIG, noise(BIG_BYTES))
    _put(d / "vae" / "diffusion_pytorch_model.safetensors", noise(20_000))
    _put(d / "text_encoder" / "model.safetensors", noise(30_000))
    _put(d / "image_encoder" / "model.safetensors", noise(10_000))
    _put(d / "tokenizer" / "tokenizer_config.json", b"{}")
    _put(d / "scheduler" / "scheduler_config.json", b"{}")
    o = root / "original"
    _put(o / "process_checkpoint" / "det" / "yolov10m.onnx", noise(5_000))
    _put(o / "process_checkpoint" / "pose2d" / "vitpose_h_wholebody.onnx", noise(6_000))
    _put(o / "relighting_lora.ckpt", noise(3_000))
    _put(o / "diffusion_pytorch_model-00001-of-00004.safetensors", noise(50_000))  # not fetched
    s = root / "sam2"
    _put(s / "config.json", json.dumps({"model_type": "sam2_video"}).encode())
    _put(s / "model.safetensors", noise(4_000))
    _put(s / "sam2.1_hiera_large.pt", noise(4_000))  # the original checkpoint: not fetched
    stand_in = HubStandIn({DIFFUSERS: d, ORIGINAL: o, SAM2: s}, rate=RATE)
    yield stand_in
    stand_in.close()


def test_download_stop_resume_and_check(hub, tmp_path, extension_zip, backend_python, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # never the user's cache or token
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    other = tmp_path / "wan-t2v"
    _put(other / "model_index.json", json.dumps({"_class_name": "WanPipeline"}).encode())
    model_dir = tmp_path / "models" / "wan"
    r = run_blender(
        "5.0",
        "weights_download.py",
        {
            "zip": extension_zip,
            "backend_python": os.path.abspath(backend_python),  # not resolve(): keep the venv's path
            "model_dir": str(model_dir),
            "stop_after_bytes": 1_000_000,
            "damage": "vae/diffusion_pytorch_model.safetensors",
            "other_engine_dir": str(other),
        },
        tmp_path,
        timeout=300,
    )
    # Offline: refused before anything starts, saying how to turn it on and the way around it.
    assert r["offline"] == ["CANCELLED"]
    assert "Allow Online Access" in r["offline_error"] or "--online-mode" in r["offline_error"]
    assert "Model folder" in r["offline_error"]
    assert r["offline_started"] is False

    assert r["online_access"] is True
    assert r["while_running"]["running"] is True
    assert r["while_running"]["stage"].startswith("Downloading: ") and " MB (" in r["while_running"]["stage"]
    assert r["stop"] == ["FINISHED"]
    stopped = r["stopped"]
    assert 0 < stopped["done"] < stopped["total"], stopped
    assert "resume" in stopped["stage"]
    assert r["check_stopped"]["result"] == ["CANCELLED"]
    assert BIG in r["check_stopped"]["lines"][0]  # the file it stopped in is named as missing

    assert r["resume"] == ["FINISHED"], r["resumed"]
    assert r["resumed"]["done"] == stopped["total"]
    # Resumed, not restarted: the big file's second request started where the first stopped.
    gets = [rng for method, path, rng in hub.log if method == "GET" and path == f"{DIFFUSERS}/{BIG}"]
    assert len(gets) == 2 and gets[0] is None, gets
    assert gets[1] is not None and int(gets[1].split("=")[1].split("-")[0]) > 0, gets

    fetched = {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()}
    assert {
        "process_checkpoint/det/yolov10m.onnx",
        "process_checkpoint/pose2d/vitpose_h_wholebody.onnx",
    } <= fetched
    assert "relighting_lora.ckpt" in fetched
    assert "diffusion_pytorch_model-00001-of-00004.safetensors" not in fetched  # the original weights stay
    assert {"sam2/config.json", "sam2/model.safetensors"} <= fetched  # replace masks' SAM2, in its folder
    assert not any(f.endswith(".pt") for f in fetched)

    assert r["check"]["result"] == ["FINISHED"], r["check"]
    assert r["check"]["lines"][0].startswith("All 16 files present")
    assert r["check_sha256"]["result"] == ["FINISHED"] and "sha256" in r["check_sha256"]["lines"][0]
    assert r["check_damaged"]["result"] == ["FINISHED"]  # same size: only the hash check sees it
    assert r["check_damaged_sha256"]["result"] == ["CANCELLED"]
    assert "vae/diffusion_pytorch_model.safetensors" in r["check_damaged_sha256"]["lines"][0]
    assert r["check_missing"]["lines"][0] == "Missing 1 of 16 files: vae/diffusion_pytorch_model.safetensors"
    assert r["check_other_engine"]["result"] == ["CANCELLED"]
    assert "text-to-video" in r["check_other_engine"]["lines"][0]
