"""The sidebar's cast in Blender (the ends of the supported range), on the two rendered
mannequins of test_cast.py, through the real backend with the tiny model."""

from __future__ import annotations

import pytest
from conftest import RANGE_ENDS, run_blender
from rendered_clips import render_clip
from test_cast import PEOPLE, H, W

FRAMES, SHOWN = 9, 5


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    import numpy as np
    from PIL import Image
    from skimage.data import astronaut

    folder = tmp_path_factory.mktemp("cast_blender")
    clip, truth = render_clip(folder, "two", PEOPLE, W, H, FRAMES, distance=4.6)
    character = folder / "character.png"
    Image.fromarray(np.ascontiguousarray(astronaut())).save(character)
    return clip, truth, character


@RANGE_ENDS
def test_the_sidebar_cast_replaces_both_performers_in_one_job(
    bl, tmp_path, backend_python, tiny_model, extension_zip, two
):
    clip, truth, character = two
    # A click on each person's hips; the second on a later frame the strip shows.
    picks = []
    for person, f in ((0, 0), (1, 3)):
        j = truth[f][person]
        picks.append([[(j[11][0] + j[12][0]) / 2 / W, (j[11][1] + j[12][1]) / 2 / H], f])
    r = run_blender(
        bl,
        "cast_sidebar.py",
        {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "clip": str(clip),
            "characters": [str(character), str(character)],
            "picks": picks,
            "width": W,
            "height": H,
            "frames_cut": FRAMES - SHOWN,
        },
        tmp_path,
    )
    assert r["pick"] == [["FINISHED"], ["FINISHED"]]
    assert "Cast row 1 has no performer" in r["unpicked"]
    assert r["removed"] == ["FINISHED"] and r["move_down"] == ["FINISHED"]
    assert r["after_move"] == [pytest.approx(picks[1][0], abs=1e-4), pytest.approx(picks[0][0], abs=1e-4)]
    assert r["move_past_end"] == ["CANCELLED"]
    person, frame, cast, one_character = r["one_row"]
    assert person == pytest.approx(picks[0][0], abs=1e-4) and frame == 0 and cast == []
    assert one_character.endswith("character.png")
    assert r["replace"][0] == ["FINISHED"], r["replace"][1]
    (strip,) = r["strips"]
    assert strip[2:] == [1, SHOWN]  # one strip, on the frames the plate shows
    job = r["job"]
    assert [p["folder"] for p in job["cast"]] == ["cast_1", "cast_2"] and r["folders"][:2] == [
        "background",
        "cast_1",
    ]
    rows = job["settings"]["cast"]
    assert rows[0]["person"] == pytest.approx(picks[0][0], abs=1e-4)
    assert rows[1]["person_frame"] == 3 and "cast_2" in rows[1]["character_path"]
    names = [x[0] for x in r["compare"]]
    assert (
        "reference" in names
        and any(n.endswith("cast_1") for n in names)
        and any(n.endswith("cast_2") for n in names)
    )
    assert sorted(x[2] for x in r["compare"] if x[1] == "TEXT") == ["Cast 1 of 2", "Cast 2 of 2"]
    ok, error = r["batch_refused"]
    assert not ok and "Wan2.2-Animate" in error and "replace" in error
