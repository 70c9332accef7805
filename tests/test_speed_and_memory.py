"""Memory modes, speed options and LoRAs: each is a job setting, run over real HTTP.

On this CPU machine the offload modes move weights between CPU and CPU, so they show that each
mode is wired through and gives the same frames; what they save on a GPU is measured by
benchmarks/bench_speed.py, not here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from backend_proc import BackendProc, result_frames, result_json
from released_models import WAN_ANIMATE_14B
from safetensors.torch import save_file

from backend.model import memory_plan
from backend.protocol import RequestError

SETTINGS = {"width": 64, "height": 48, "steps": 3, "segment_frames": 17, "overlap": 1, "clip_frames": 17}
GB = 1024**3


@pytest.mark.parametrize(
    ("gpu_gb", "width", "height", "expected"),
    [
        (80, 1280, 720, "resident"),
        (48, 832, 480, "model_offload"),
        (24, 1280, 720, "group_offload"),
        (16, 832, 480, "group_offload"),
        (8, 832, 480, "sequential_offload"),
    ],
)
def test_auto_memory_mode_fits_the_gpu_class(gpu_gb, width, height, expected):
    need = memory_plan.needs(WAN_ANIMATE_14B, width, height, 77)
    assert memory_plan.resolve("auto", need, gpu_gb * GB) == expected
    assert memory_plan.resolve("group_offload", need, gpu_gb * GB) == "group_offload"  # the user overrides


def test_fp8_halves_what_the_transformer_needs():
    plain = memory_plan.needs(WAN_ANIMATE_14B, 832, 480, 77)
    fp8 = memory_plan.needs(WAN_ANIMATE_14B, 832, 480, 77, fp8=True)
    assert (
        plain["resident"] - fp8["resident"] == WAN_ANIMATE_14B.transformer - WAN_ANIMATE_14B.transformer // 2
    )
    # 48 GB runs fp8 resident where bf16 needs model offload.
    assert memory_plan.resolve("auto", fp8, 48 * GB) == "resident"


def test_out_of_memory_message_names_the_mode_that_fits():
    need = memory_plan.needs(WAN_ANIMATE_14B, 1280, 720, 77)
    msg = memory_plan.too_big_message(need, 24 * GB, "resident")
    assert "'resident'" in msg and "Choose memory mode 'group_offload'" in msg
    with pytest.raises(RequestError, match="lower the width and height"):
        memory_plan.resolve("auto", need, 2 * GB)
    with pytest.raises(RequestError, match="one backend per GPU"):
        memory_plan.resolve("group_offload", need, 80 * GB, parallel=True)
    # With several GPUs only the modes that keep the transformer whole are offered or advised.
    assert memory_plan.resolve("auto", need, 48 * GB, parallel=True) == "model_offload"
    with pytest.raises(RequestError, match=r"Even 'model_offload' needs about 42\.8 GB"):
        memory_plan.resolve("auto", need, 24 * GB, parallel=True)


@pytest.fixture(scope="module")
def backend(tmp_path_factory, backend_python, tiny_model):
    b = BackendProc(backend_python, tmp_path_factory.mktemp("speed") / "data", tiny_model)
    yield b
    b.stop()


def run(b, character, clip, **settings) -> tuple[np.ndarray, dict]:
    body = {"character_path": str(character), "clip_path": str(clip), "settings": {**SETTINGS, **settings}}
    result = b.run_job(body)
    return result_frames(result), result_json(result)


def fail(b, character, clip, **settings) -> str:
    body = {"character_path": str(character), "clip_path": str(clip), "settings": {**SETTINGS, **settings}}
    r = b.post("/v1/jobs", json=body)
    if r.status_code == 400:
        return r.json()["detail"]
    st, _ = b.wait(r.json()["id"], timeout=600)
    assert st["state"] == "failed", st
    return st["error"]


@pytest.fixture(scope="module")
def baseline(backend, astronaut_png, carphone_clip):
    frames, job = run(backend, astronaut_png, carphone_clip, memory_mode="resident")
    assert frames.std() > 5 and job["memory_mode"] == "resident"
    return frames, job


@pytest.mark.parametrize("mode", ["model_offload", "group_offload", "sequential_offload"])
def test_every_memory_mode_gives_the_resident_frames(backend, baseline, astronaut_png, carphone_clip, mode):
    frames, job = run(backend, astronaut_png, carphone_clip, memory_mode=mode)
    assert job["memory_mode"] == mode
    assert np.abs(frames - baseline[0]).max() <= 1


def test_auto_on_a_machine_without_gpu_keeps_everything_resident(backend, astronaut_png, carphone_clip):
    _frames, job = run(backend, astronaut_png, carphone_clip)
    assert job["memory_mode"] == "resident"
    assert job["attention"] == "sdpa"  # what auto picks without a GPU
    assert set(job["memory_estimate_gb"]) == set(memory_plan.MODES)


def test_fp8_weights_take_a_byte_each_and_stay_close(backend, baseline, astronaut_png, carphone_clip):
    frames, job = run(backend, astronaut_png, carphone_clip, fp8=True, memory_mode="resident")
    assert job["fp8"] is True
    # The blocks' matrices drop from 4 bytes (fp32 on this CPU; 2 in bf16 on a GPU) to 1; their
    # norms and biases stay as they were.
    assert job["transformer_block_weight_bytes"] < 0.35 * baseline[1]["transformer_block_weight_bytes"]
    assert job["transformer_weight_bytes"] < baseline[1]["transformer_weight_bytes"]
    assert np.abs(frames - baseline[0]).mean() < 8  # rounding of weights, not another picture


def test_attention_kernels_agree_and_missing_ones_are_explained(
    backend, baseline, astronaut_png, carphone_clip
):
    frames, job = run(backend, astronaut_png, carphone_clip, attention="sdpa_math", memory_mode="resident")
    assert job["attention"] == "sdpa_math"
    assert np.abs(frames - baseline[0]).max() <= 1
    msg = fail(backend, astronaut_png, carphone_clip, attention="flash_attn_3")
    assert "GPU" in msg or "flash_attn_interface" in msg
    assert "'sdpa'" in msg
    assert "attention must be one of" in fail(backend, astronaut_png, carphone_clip, attention="fastest")


def test_step_cache_skips_steps_only_when_asked(backend, baseline, astronaut_png, carphone_clip):
    frames, job = run(backend, astronaut_png, carphone_clip, step_cache=0.0, steps=8, memory_mode="resident")
    assert job["skipped_steps"] == 0
    fast, job_fast = run(
        backend, astronaut_png, carphone_clip, step_cache=0.5, steps=8, memory_mode="resident"
    )
    windows = job_fast["windows"]
    # Never the first two steps of a window (they measure the rate) nor its last one.
    assert 0 < job_fast["skipped_steps"] <= windows * (8 - 3)
    assert fast.std() > 5 and np.abs(fast - frames).mean() < 40


def test_compiled_transformer_gives_the_same_frames(backend, baseline, astronaut_png, carphone_clip):
    frames, job = run(backend, astronaut_png, carphone_clip, compile=True, memory_mode="resident")
    assert job["compile"] is True
    assert np.abs(frames - baseline[0]).max() <= 2


def _lora_modules(tiny_model: Path) -> dict[str, tuple[int, int]]:
    cfg = json.loads((tiny_model / "transformer" / "config.json").read_text())
    dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    mods = {}
    for b in range(cfg["num_layers"]):
        for wan, shape in (
            ("self_attn.q", (dim, dim)),
            ("self_attn.o", (dim, dim)),
            ("cross_attn.k", (dim, dim)),  # the text arrives projected to the model's width
            ("ffn.0", (cfg["ffn_dim"], dim)),
            ("ffn.2", (dim, cfg["ffn_dim"])),
        ):
            mods[f"blocks.{b}.{wan}"] = shape
    return mods


DIFFUSERS_NAME = {
    "self_attn.q": "attn1.to_q",
    "self_attn.o": "attn1.to_out.0",
    "cross_attn.k": "attn2.to_k",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
}


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory, tiny_model) -> dict[str, Path]:
    """One random LoRA written in the three layouts users bring (same effect in each)."""
    g = torch.Generator().manual_seed(3)
    rank, alpha = 4, 2.0
    folder = tmp_path_factory.mktemp("loras")
    layouts: dict[str, dict[str, torch.Tensor]] = {"diffusers": {}, "wan": {}, "kohya": {}}
    for name, (out_f, in_f) in _lora_modules(tiny_model).items():
        down = torch.randn(rank, in_f, generator=g) * 0.3
        up = torch.randn(out_f, rank, generator=g) * 0.3
        b, rest = name.split(".", 2)[1], name.split(".", 2)[2]
        diff = f"transformer.blocks.{b}.{DIFFUSERS_NAME[rest]}"
        layouts["diffusers"][f"{diff}.lora_A.weight"] = down
        layouts["diffusers"][f"{diff}.lora_B.weight"] = up * (alpha / rank)
        layouts["wan"][f"diffusion_model.{name}.lora_down.weight"] = down
        layouts["wan"][f"diffusion_model.{name}.lora_up.weight"] = up
        layouts["wan"][f"diffusion_model.{name}.alpha"] = torch.tensor(alpha)
        kohya = "lora_unet_" + name.replace(".", "_")
        layouts["kohya"][f"{kohya}.lora_down.weight"] = down
        layouts["kohya"][f"{kohya}.lora_up.weight"] = up
        layouts["kohya"][f"{kohya}.alpha"] = torch.tensor(alpha)
    # A norm difference as LightX2V's files carry: nothing to hang a LoRA on, reported.
    layouts["wan"]["diffusion_model.blocks.0.norm3.diff"] = torch.zeros(8)
    paths = {}
    for layout, sd in layouts.items():
        paths[layout] = folder / f"{layout}.safetensors"
        save_file(sd, str(paths[layout]))
    other = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8)}
    paths["other_model"] = folder / "sdxl_style.safetensors"
    save_file(other, str(paths["other_model"]))
    wrong = {"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.zeros(4, 5120)}
    wrong["diffusion_model.blocks.0.self_attn.q.lora_up.weight"] = torch.zeros(5120, 4)
    paths["other_size"] = folder / "wan14b_sized.safetensors"
    save_file(wrong, str(paths["other_size"]))
    (folder / "not_a_lora.safetensors").write_text("hello")
    paths["broken"] = folder / "not_a_lora.safetensors"
    return paths


def test_loras_in_every_layout_with_strength(backend, baseline, lora_files, astronaut_png, carphone_clip):
    base = baseline[0]
    results = {}
    for layout in ("diffusers", "wan", "kohya"):
        loras = [{"path": str(lora_files[layout]), "strength": 1.0}]
        results[layout], job = run(backend, astronaut_png, carphone_clip, loras=loras, memory_mode="resident")
        (report,) = job["loras"]
        assert report["layers"] == 10 and report["rank"] == 4
    assert np.abs(results["diffusers"] - base).mean() > 2  # the LoRA changes the picture
    assert np.abs(results["wan"] - results["diffusers"]).max() <= 1
    assert np.abs(results["kohya"] - results["diffusers"]).max() <= 1
    _, job = run(backend, astronaut_png, carphone_clip, loras=[{"path": str(lora_files["wan"])}])
    assert job["loras"][0]["skipped_keys"] == 1  # the norm difference, said rather than hidden

    half, job = run(
        backend, astronaut_png, carphone_clip, loras=[{"path": str(lora_files["wan"]), "strength": 0.5}]
    )
    # Still loaded from the job before, it is reported as fully as when it was read.
    assert job["loras"][0]["layout"] == "wan" and job["loras"][0]["skipped_keys"] == 1
    # Half strength is neither no LoRA nor the whole of it. (Whether it lands nearer the plain
    # model is not a property of a random tiny model: its frames move non-linearly with weights.)
    assert np.abs(half - base).mean() > 1 and np.abs(half - results["wan"]).mean() > 1
    zero, _ = run(
        backend, astronaut_png, carphone_clip, loras=[{"path": str(lora_files["wan"]), "strength": 0.0}]
    )
    assert np.abs(zero - base).max() <= 1
    # With fp8 weights and block offload the LoRA still applies, at full precision.
    fp8_lora, _ = run(
        backend,
        astronaut_png,
        carphone_clip,
        loras=[{"path": str(lora_files["wan"])}],
        fp8=True,
        memory_mode="group_offload",
    )
    fp8_plain, _ = run(backend, astronaut_png, carphone_clip, fp8=True, memory_mode="group_offload")
    assert np.abs(fp8_lora - fp8_plain).mean() > 2
    assert np.abs(fp8_lora - results["wan"]).mean() < np.abs(fp8_plain - results["wan"]).mean()
    # The next job without a LoRA runs the base model again.
    plain, job = run(backend, astronaut_png, carphone_clip, memory_mode="resident")
    assert job["loras"] == [] and np.abs(plain - base).max() <= 1


def test_lora_files_that_cannot_apply_are_refused_clearly(backend, lora_files, astronaut_png, carphone_clip):
    msg = fail(backend, astronaut_png, carphone_clip, loras=[{"path": str(lora_files["other_model"])}])
    assert "no weights for Wan-Animate's transformer" in msg and "another model" in msg
    msg = fail(backend, astronaut_png, carphone_clip, loras=[{"path": str(lora_files["broken"])}])
    assert "Cannot read the LoRA not_a_lora.safetensors" in msg
    msg = fail(backend, astronaut_png, carphone_clip, loras=[{"path": str(lora_files["other_size"])}])
    assert "does not fit this model" in msg and "another Wan size" in msg
    msg = fail(backend, astronaut_png, carphone_clip, loras=[{"path": "/nowhere/x.safetensors"}])
    assert "LoRA file not found" in msg
    assert "strength" in fail(backend, astronaut_png, carphone_clip, loras=[{"path": "x", "strength": 9}])
