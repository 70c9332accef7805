"""Batch and scripting: many shots through the Python API; a failed shot is reported
and the others are done."""

from __future__ import annotations

from conftest import NEWEST, run_blender
from test_bad_inputs import _shapes_clip


@NEWEST
def test_batch_reports_a_failed_shot_and_finishes_the_rest(
    bl, tmp_path, backend_python, tiny_model, extension_zip, carphone_clip, astronaut_png
):
    nobody = tmp_path / "nobody.mp4"
    _shapes_clip(nobody)
    r = run_blender(
        bl,
        "batch.py",
        {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "clip": str(carphone_clip),
            "missing": str(tmp_path / "gone.mp4"),
            "no_person": str(nobody),
            "character": str(astronaut_png),
        },
        tmp_path,
    )
    res = {x["name"]: x for x in r["results"]}
    assert [x["name"] for x in r["results"]] == ["sh010", "sh020", "sh030", "sh040"]
    assert res["sh010"]["ok"] and res["sh040"]["ok"]
    assert not res["sh020"]["ok"] and "was not found" in res["sh020"]["error"]
    assert not res["sh030"]["ok"] and "No person was found" in res["sh030"]["error"]
    assert res["sh010"]["frame_count"] == 120 and res["sh040"]["frame_count"] == 120
    assert res["sh010"]["result_dir"] != res["sh040"]["result_dir"]
    assert r["strips"] == [["Wan sh010", 1, 120], ["Wan sh040", 50, 120]]
    assert r["progress_lines"] > 4 and r["saw_window"]
