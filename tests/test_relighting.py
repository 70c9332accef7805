"""Replace mode's relighting LoRA: the official torch checkpoint and the repackaged safetensors
layout give the same frames, the strength scales it, and a missing file is said, not hidden."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from backend_proc import BackendProc, result_frames, result_json
from safetensors.torch import save_file

SETTINGS = {"width": 64, "height": 48, "steps": 2, "segment_frames": 17, "clip_frames": 17, "mode": "replace"}
# Every Linear of the blocks but the face and modulation layers, as the official LoRA targets.
TARGETS = {
    "self_attn.q": (24, 24),
    "self_attn.k": (24, 24),
    "self_attn.v": (24, 24),
    "self_attn.o": (24, 24),
    "cross_attn.q": (24, 24),
    "cross_attn.k": (24, 24),
    "cross_attn.v": (24, 24),
    "cross_attn.o": (24, 24),
    "cross_attn.k_img": (24, 24),
    "cross_attn.v_img": (24, 24),
    "ffn.0": (32, 24),
    "ffn.2": (24, 32),
}


@pytest.fixture(scope="module")
def relight(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("relight")
    model = root / "model"
    shutil.copytree(tiny_model, model)
    g = torch.Generator().manual_seed(5)
    official, repackaged = {}, {}
    for block in range(2):
        for name, (out_f, in_f) in TARGETS.items():
            a = torch.randn(8, in_f, generator=g) * 0.4
            b = torch.randn(out_f, 8, generator=g) * 0.4
            official[f"blocks.{block}.{name}.lora_A.weight"] = a
            official[f"blocks.{block}.{name}.lora_B.weight"] = b
            repackaged[f"diffusion_model.blocks.{block}.{name}.lora_down.weight"] = a.half()
            repackaged[f"diffusion_model.blocks.{block}.{name}.lora_up.weight"] = b.half()
    ckpt = root / "relighting_lora.ckpt"
    torch.save({"state_dict": official}, ckpt)
    st = root / "WanAnimate_relight_lora_fp16.safetensors"
    save_file(repackaged, str(st))
    return model, ckpt, st


def run(b, character, clip, **settings) -> tuple[np.ndarray, dict]:
    body = {"character_path": str(character), "clip_path": str(clip), "settings": {**SETTINGS, **settings}}
    result = b.run_job(body)
    return result_frames(result), result_json(result)


def test_relighting_lora_layouts_strength_and_absence(
    tmp_path, backend_python, relight, astronaut_png, carphone_clip
):
    model, ckpt, st = relight
    b = BackendProc(backend_python, tmp_path / "data", model)
    try:
        plain, job = run(b, astronaut_png, carphone_clip)
        assert "not used" in job["relighting"] and "python -m backend download" in job["relighting"]

        official, job = run(b, astronaut_png, carphone_clip, relight_lora=str(ckpt))
        assert job["relighting"] == {"file": "relighting_lora.ckpt", "strength": 1.0}
        assert job["loras"][0]["layers"] == 24 and job["loras"][0]["rank"] == 8
        assert np.abs(official - plain).mean() > 2
        repack, job = run(b, astronaut_png, carphone_clip, relight_lora=str(st))
        assert job["loras"][0]["layout"] == "wan"
        assert np.abs(repack - official).max() <= 2  # the fp16 copy rounds a little

        # In the model folder, where `download` puts it, it is used without being named.
        shutil.copy(ckpt, model / "relighting_lora.ckpt")
        default, job = run(b, astronaut_png, carphone_clip)
        assert job["relighting"]["file"] == "relighting_lora.ckpt"
        assert np.abs(default - official).max() <= 1
        off, job = run(b, astronaut_png, carphone_clip, relight_strength=0.0)
        assert job["relighting"] == "off" and np.abs(off - plain).max() <= 1
        # Animate mode never relights.
        _, job = run(b, astronaut_png, carphone_clip, mode="animate")
        assert job["relighting"] == "off" and job["loras"] == []
    finally:
        (model / "relighting_lora.ckpt").unlink(missing_ok=True)
        b.stop()
