"""Replace performer on a Sequencer strip: the frames it shows, a new strip above, the
original muted (kept), a re-run beside the old one, Ctrl+Z back to before."""

from __future__ import annotations

from conftest import RANGE_ENDS, run_blender


@RANGE_ENDS
def test_replace_performer_on_a_trimmed_strip(
    bl, tmp_path, backend_python, tiny_model, extension_zip, carphone_clip, astronaut_png
):
    r = run_blender(
        bl,
        "replace.py",
        {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "clip": str(carphone_clip),
            "character": str(astronaut_png),
        },
        tmp_path,
    )
    assert r["r1"] == ["FINISHED"] and r["r2"] == ["FINISHED"], r["status"]
    assert r["before"] == [["plate", "MOVIE", 2, 15, 40, False]]
    plate = [x for x in r["after1"] if x[0] == "plate"][0]
    assert plate[5] is True  # muted, not deleted
    (first,) = [x for x in r["after1"] if x[1] == "IMAGE"]
    assert first[2:5] == [3, 15, 40]  # above the plate, on the frames it shows
    images = sorted(x for x in r["after2"] if x[1] == "IMAGE")
    assert len(images) == 2 and {x[2] for x in images} == {3, 4} and len(set(r["dirs"])) == 2
    assert r["modes"] == ["replace", "replace"]
    assert r["ranges"] == [[10, 40], [10, 40]]
    # The sidebar's relighting strength reaches the job; the test model folder has no LoRA,
    # which job.json says rather than hides.
    assert [x[0] for x in r["relight"]] == [1.0, 0.4]
    assert all("not used" in x[1] for x in r["relight"])
    assert r["undone"] == r["after1"]  # Ctrl+Z takes back the last replacement, and only it
    assert "Set the scene" not in r["status"]  # a replacement keeps the plate's rate on purpose
