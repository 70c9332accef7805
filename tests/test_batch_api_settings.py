"""The batch API sets everything the sidebar can: each setting, changed from its
default on a Shot, is what the backend ran with (read back from the job's job.json)."""

from __future__ import annotations

import pytest
import torch
from conftest import run_blender
from safetensors.torch import save_file
from test_estimator_onnx import two_people_model
from test_speed_and_memory import _lora_modules


def _lora(tiny_model, path) -> None:
    g = torch.Generator().manual_seed(5)
    sd = {}
    for name, (out_f, in_f) in _lora_modules(tiny_model).items():
        sd[f"diffusion_model.{name}.lora_down.weight"] = torch.randn(2, in_f, generator=g) * 0.1
        sd[f"diffusion_model.{name}.lora_up.weight"] = torch.randn(out_f, 2, generator=g) * 0.1
    save_file(sd, str(path))


def test_a_shot_runs_with_every_sidebar_setting(
    tmp_path, backend_python, tiny_model, extension_zip, astronaut_png
):
    model, clip = two_people_model(tiny_model, tmp_path, 17)  # one window
    lora = tmp_path / "style.safetensors"
    _lora(tiny_model, lora)
    relight = tmp_path / "relight.safetensors"  # recorded; animate mode does not load it
    r = run_blender(
        "5.0",
        "batch_settings.py",
        {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(model),
            "output_dir": str(tmp_path / "out"),
            "clip": str(clip),
            "character": str(astronaut_png),
            "lora": str(lora),
            "relight_lora": str(relight),
        },
        tmp_path,
    )
    assert r["sidebar_not_in_shot"] == []
    assert [(x["name"], x["ok"], x["error"]) for x in r["results"]] == [
        ("changed", True, None),
        ("defaults", True, None),
    ]
    changed, defaults = r["settings"]["changed"], r["settings"]["defaults"]
    # The astronaut is square: preview's pixel budget at 1:1.
    assert (changed["width"], changed["height"]) == (192, 192)
    assert changed["steps"] == 2 and changed["seed"] == 7 and changed["segment_frames"] == 17
    assert changed["overlap"] == 5 and changed["colour_match"] is False
    assert changed["step_cache"] == pytest.approx(0.1)
    assert changed["loras"] == [{"path": str(lora), "strength": 0.75}]
    assert changed["retarget"] == "off" and changed["estimator"] == "vitpose"
    assert changed["person"] == pytest.approx([220 / 320, 120 / 240]) and changed["person_frame"] == 5
    assert r["sidebar_pick"][0] == pytest.approx((0.25, 0.75)) and r["sidebar_pick"][1:] == [12, True]
    assert changed["relight_strength"] == pytest.approx(0.5) and changed["relight_lora"] == str(relight)
    assert changed["memory_mode"] == "group_offload" and changed["attention"] == "sdpa_math"
    assert changed["compile"] is True and changed["fp8"] is True
    assert changed["sampler"] == "unipc"

    # Left alone, a Shot keeps its own defaults (not the scene's sidebar) and the
    # machine's speed and memory preferences.
    assert (defaults["width"], defaults["height"]) == (64, 48)
    assert defaults["seed"] == 42 and defaults["overlap"] == 1 and defaults["colour_match"] is True
    assert defaults["retarget"] == "auto" and defaults["estimator"] == "auto" and defaults["person"] is None
    assert defaults["person_frame"] == 0
    assert defaults["relight_strength"] == 1.0 and defaults["relight_lora"] == ""
    assert defaults["loras"] == [] and defaults["step_cache"] == 0.0
    assert defaults["memory_mode"] == "sequential_offload" and defaults["attention"] == "sdpa"
    assert defaults["compile"] is False and defaults["fp8"] is False
    assert defaults["sampler"] == "dpm++"
