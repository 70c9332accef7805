"""The headless Generate path in real Blender against a real backend process on the
tiny model, and what an artist checks: the strip, its frames, nothing lost."""

from __future__ import annotations

import shutil

import pytest
from conftest import BLENDER_VERSIONS, RANGE_ENDS, run_blender


@pytest.fixture()
def job_args(tmp_path, backend_python, tiny_model, extension_zip, carphone_clip):
    def make(**kw):
        base = {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "clip": str(carphone_clip),
        }
        return {**base, **kw}

    return make


@BLENDER_VERSIONS
def test_generate_from_camera_still_puts_every_frame_on_the_timeline(bl, tmp_path, job_args):
    r = run_blender(
        bl,
        "generate.py",
        job_args(second_run=True),
        tmp_path,
    )
    assert r["op_result"] == ["FINISHED"], r["status"]
    (strip,) = r["new_strips"]
    assert strip["type"] == "IMAGE"
    # carphone: 120 frames at 29.97 fps; the result lasts as long, at the scene's rate (24 by default).
    n = round(120 * r["scene_fps"] / 29.97)
    assert r["scene_fps"] == 24 and n == 96
    assert "Set the scene to 29.97 fps" in r["status"]
    assert strip["elements"] == n and strip["frame_final_duration"] == n
    assert strip["missing"] == []
    assert strip["frame_start"] == r["scene_frame_start"]
    job = strip["job"]
    assert job["tiny_random_model"] is True and "tiny random" in job["warning"]
    assert job["frame_count"] == n and job["fps"] == 24 and abs(job["inputs"]["clip"]["fps"] - 29.97) < 0.01
    assert job["settings"]["steps"] == 2 and job["settings"]["width"] % 16 == 0
    assert job["inputs"]["character"]["path"].endswith(".png")
    assert len(job["inputs"]["clip"]["sha256"]) == 64
    assert set(job["timings_s"]) >= {"preprocessing", "denoising", "decoding", "writing", "model_load"}
    # A second Generate makes a new folder and a new strip beside the first; nothing is overwritten.
    assert r["second"]["op_result"] == ["FINISHED"]
    dirs = {d for _, _, d in r["second"]["strips"]}
    assert len(r["second"]["strips"]) == 2 and len(dirs) == 2
    chans = [c for _, c, _ in r["second"]["strips"]]
    assert len(set(chans)) == 2


@pytest.mark.parametrize("bl", ["5.0"])
def test_reference_strip_result_lands_above_it_at_its_start(
    bl, tmp_path, job_args, carphone_clip, astronaut_png
):
    # Spaces and non-ASCII characters in every path the job touches.
    odd = tmp_path / "clips dir é" / "Référence clip ü.mp4"
    odd.parent.mkdir()
    shutil.copy(carphone_clip, odd)
    char = tmp_path / "персонаж 1.png"
    shutil.copy(astronaut_png, char)
    # The scene set to the clip's rate (29.97), as Blender's "Set Scene Frame Rate" does.
    args = job_args(clip=str(odd), reference_strip=11, character=str(char), scene_fps=[30, 1.001])
    args["output_dir"] = str(tmp_path / "out put ñ")
    r = run_blender(bl, "generate.py", args, tmp_path)
    assert r["op_result"] == ["FINISHED"], r["status"]
    (strip,) = r["new_strips"]
    assert strip["frame_start"] == 11
    assert "Set the scene" not in r["status"]  # scene and clip agree on the rate
    assert strip["channel"] == 3  # first free channel above the reference on channel 2
    assert strip["elements"] == 120 and strip["missing"] == []
    assert strip["job"]["inputs"]["clip"]["path"].endswith("Référence clip ü.mp4")


@pytest.mark.parametrize("bl", ["4.2"])
def test_cancel_from_blender_stops_the_job_and_imports_nothing(bl, tmp_path, job_args):
    args = job_args(
        async_cancel=True,
        settings={"steps": 40},
    )
    r = run_blender(bl, "generate.py", args, tmp_path)
    assert any("window" in s for s in r["stages"]), r["stages"]
    assert r["cancelled"] is True
    assert r["backend_state"] == "cancelled"
    assert r["new_strips"] == []
    assert "nothing was imported" in r["message"]
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("bl", ["5.0"])
def test_backend_crash_mid_job_is_reported_and_imports_nothing(bl, tmp_path, job_args):
    args = job_args(
        kill_backend_at="window",
        settings={"steps": 40},
    )
    r = run_blender(bl, "generate.py", args, tmp_path)
    assert r["ok"] is False
    assert "backend stopped unexpectedly" in r["error"]
    assert "Press Generate to start it again" in r["error"]
    assert r["new_strips"] == []


@pytest.mark.parametrize("bl", ["4.2"])
def test_remote_backend_uploads_inputs_and_downloads_frames(
    bl, tmp_path, job_args, backend_python, tiny_model
):
    from backend_proc import BackendProc

    remote = BackendProc(backend_python, tmp_path / "remote-data", tiny_model, token="remote-secret")
    try:
        args = job_args(
            remote_url=remote.url,
            remote_token="remote-secret",
        )
        r = run_blender(bl, "generate.py", args, tmp_path)
    finally:
        remote.stop()
    assert r["op_result"] == ["FINISHED"], r["status"]
    assert r["local_backend_started"] is False
    (strip,) = r["new_strips"]
    assert strip["elements"] == 96 and strip["missing"] == []
    local = tmp_path / "out"
    assert str(local) in strip["directory"]  # frames were brought home, not read from the backend's disk
    assert strip["job"]["inputs"]["clip"]["path"].startswith(str(tmp_path / "remote-data" / "uploads"))


@RANGE_ENDS
def test_speed_memory_and_lora_settings_reach_the_backend(bl, tmp_path, job_args):
    import torch
    from safetensors.torch import save_file

    # A small LoRA on the tiny model's first self-attention query, in the original Wan layout.
    lora = tmp_path / "style.safetensors"
    save_file(
        {
            "diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(2, 24),
            "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.randn(24, 2),
        },
        str(lora),
    )
    args = job_args(
        prefs={"memory_mode": "group_offload", "attention": "sdpa_math", "fp8": True},
        settings={"step_cache": 0.25, "retarget": False, "estimator": "mediapipe"},
        loras=[[str(lora), 0.7, True], [str(tmp_path / "switched_off.safetensors"), 1.0, False]],
    )
    r = run_blender(bl, "generate.py", args, tmp_path)
    assert r["op_result"] == ["FINISHED"], r["status"]
    job = r["new_strips"][0]["job"]
    assert job["memory_mode"] == "group_offload" and job["attention"] == "sdpa_math" and job["fp8"] is True
    assert job["step_cache"] == 0.25
    assert job["retarget"] == {"applied": False, "why": "off"} and job["settings"]["estimator"] == "mediapipe"
    # Only the enabled row reaches the backend, at its strength.
    assert job["settings"]["loras"] == [{"path": str(lora), "strength": 0.7}]
    assert job["loras"][0]["layout"] == "wan" and job["loras"][0]["layers"] == 1
