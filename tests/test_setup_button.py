"""'Set up backend' makes a real environment outside Blender's Python (self-tested before it is
put in use), with its progress visible, and Generate then works with nothing else configured."""

from __future__ import annotations

import shutil

from conftest import run_blender


def test_setup_button_then_generate(tmp_path, tiny_model, extension_zip, carphone_clip):
    python = shutil.which("python3.11") or shutil.which("python3")
    assert python, "a system Python 3.11 is needed to create the backend's environment"
    r = run_blender(
        "5.0",
        "setup_then_generate.py",
        {
            "zip": extension_zip,
            "setup_python": python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "clip": str(carphone_clip),
        },
        tmp_path,
        timeout=2400,
    )
    assert r["setup_result"] == ["FINISHED"], r["log"]
    assert r["stage"] == "Backend ready"
    n = len(r["steps"])  # progress the panel shows: every step once, in order
    assert [ln.split(" ", 1)[0] for ln in r["steps"]] == [f"[{k}/{n}]" for k in range(1, n + 1)]
    assert any(ln.endswith("testing the new environment") for ln in r["steps"])  # self-tested before use
    assert r["env_python_exists"] and "backend-env" in r["env_python"] and "envs" in r["env_python"]
    assert r["env_python"] != r["blender_python"]
    assert r["blender_site_has_diffusers"] is False  # nothing was installed into Blender's Python
    assert r["generate"] == ["FINISHED"], r.get("error")
    assert r["strips"] and r["strips"][0][1] == round(120 * 24 / 29.97)


def test_roll_back_button_returns_to_the_previous_environment(tmp_path, extension_zip):
    python = shutil.which("python3.11") or shutil.which("python3")
    r = run_blender("4.2", "rollback_button.py", {"zip": extension_zip, "python": python}, tmp_path)
    assert r["poll"] is True and r["first"] == ["FINISHED"], r
    assert "envs/new" in r["before"].replace("\\", "/")
    assert "envs/old" in r["after_first"].replace("\\", "/")  # the add-on now starts the previous one
    assert r["stage"] == "Rolled back to envs/old"
    assert r["second"] == ["FINISHED"] and "envs/new" in r["after_second"].replace("\\", "/")
    assert r["poll_without_previous"] is False  # nothing kept: the button is greyed out
