"""Wan-Animate-2 chosen in the sidebar of real Blender (5.0), against a real backend on the
tiny Animate-2 model: the engine's defaults sent, Replace Performer refused with the reason,
Generate on a clip and Generate from Animation (a playblast of the scene) each giving a strip,
and Compare Take laying out the clip's Animate-2 take beside a Wan2.2-Animate take of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_blender


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, carphone_clip) -> Path:
    """Ten frames of carphone (30 fps) as a movie: a clip that costs the tiny model little."""
    import av

    target = tmp_path_factory.mktemp("clips") / "short.mp4"
    with av.open(str(carphone_clip)) as src, av.open(str(target), "w") as dst:
        stream = dst.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 176, 144, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == 10:
                break
            for packet in stream.encode(frame.reformat(176, 144, "yuv420p")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return target


@pytest.fixture(scope="module")
def both_models(tmp_path_factory, tiny_model, animate2_model) -> Path:
    """One model folder holding both engines, as an artist's does after downloading each: the
    tiny Wan2.2-Animate model at the top, the tiny Animate-2 one in its sub-folder."""
    root = tmp_path_factory.mktemp("models") / "both"
    root.mkdir()
    for part in list(tiny_model.iterdir()) + list(animate2_model.iterdir()):
        (root / part.name).symlink_to(part, target_is_directory=part.is_dir())
    return root


@pytest.mark.parametrize("bl", ["4.2", "5.0"])
def test_animate2_from_the_sidebar(
    bl, tmp_path, backend_python, both_models, extension_zip, carphone_clip, short_clip
):
    out_dir = tmp_path / "out"
    args = {
        "zip": extension_zip,
        "backend_python": backend_python,
        "model_dir": str(both_models),
        "output_dir": str(out_dir),
        "clip": str(carphone_clip),
        "short_clip": str(short_clip),
    }
    r = run_blender(bl, "generate_animate2.py", args, tmp_path)
    # The engine's defaults follow the choice, unless the artist changed them; a script's Shot too.
    assert r["wan_defaults"] == {"steps": 20, "segment_frames": 77, "guidance_scale": 1.0}
    assert r["animate2_defaults"] == {"steps": 40, "segment_frames": 81, "guidance_scale": 3.0}
    assert r["sent"] == {"engine": "wan-animate-2", "steps": 40, "segment_frames": 81, "guidance_scale": 3.0}
    assert r["distilled_defaults"] == {"steps": 4, "segment_frames": 81, "guidance_scale": 1.0}
    assert r["changed_kept"] == {"steps": 7, "segment_frames": 81, "guidance_scale": 3.0}
    assert r["shot_settings"] == {
        "engine": "wan-animate-2-distilled",
        "steps": 4,
        "segment_frames": 81,
        "guidance_scale": 1.0,
    }
    # The panel shows what the engine uses (a movie strip active in both cases).
    a2, wan = set(r["drawn_animate2"]), set(r["drawn_wan"])
    assert {"engine", "prompt", "guidance_scale", "wan_animate.generate_from_animation"} <= a2
    assert not {"retarget", "estimator", "wan_animate.pick_performer", "wan_animate.replace_performer"} & a2
    assert not {"relight_strength", "relight_lora"} & a2
    assert {"engine", "retarget", "estimator", "wan_animate.replace_performer", "relight_strength"} <= wan
    assert "guidance_scale" not in wan and "wan_animate.generate_from_animation" not in wan
    # No replace mode on Animate-2: refused, saying what to do.
    assert r["replace_result"] == ["CANCELLED"]
    assert "Wan-Animate-2 has no replace mode" in r["replace_status"]
    assert "Wan2.2-Animate" in r["replace_status"] and r["replace_status"] in r["replace_report"]

    # Generate: a strip of every frame, job.json naming the engine and what the sidebar sent.
    assert r["generate_result"] == ["FINISHED"], r["generate_status"]
    (strip,) = r["generate_strips"]
    assert strip["type"] == "IMAGE" and strip["missing"] == []
    job = strip["job"]
    assert job["engine"] == "wan-animate-2" and job["settings"]["engine"] == "wan-animate-2"
    assert job["settings"]["segment_frames"] == 81 and job["settings"]["guidance_scale"] == 3.0
    assert job["settings"]["prompt"] == "a monkey waves"
    # The machine's fp8 and the sidebar's step cache were on: not sent to an engine without them.
    assert job["settings"]["fp8"] is False and job["settings"]["step_cache"] == 0.0
    assert job["estimator"].startswith("none")  # driven by the clip's frames, no pose pass
    # Ten frames at 30 fps last 1/3 s: eight frames at the scene's 24 fps.
    assert strip["elements"] == job["frame_count"] == 8
    assert "skeleton guide" not in r["generate_status"] and r["armatures"] == []

    # The same shot by Wan2.2-Animate, compared with the Animate-2 take: the reference, then each
    # take labelled by its engine, side by side on one canvas, all on frame 1 for 8 frames.
    assert r["wan_result"] == ["FINISHED"], r["wan_status"]
    assert r["compare_result"] == ["FINISHED"], r["compare"]
    comp = r["compare"]
    assert comp["shown"].startswith("Wan compare")  # the new scene is shown
    laid = {x["type"]: [] for x in comp["strips"]}
    for x in comp["strips"]:
        laid[x["type"]].append(x)
    (ref,) = laid["MOVIE"]
    takes = sorted(laid["IMAGE"], key=lambda x: x["offset_x"])
    labels = sorted(laid["TEXT"], key=lambda x: x["x"])
    assert Path(ref["dir"]) == short_clip
    assert [t["name"].split(":")[0] for t in takes] == ["Wan-Animate-2", "Wan2.2-Animate"]
    assert [t["text"] for t in labels] == ["Wan-Animate-2", "Wan2.2-Animate"]
    jobs = [json.loads((Path(t["dir"]) / "job.json").read_text()) for t in takes]
    assert [j["settings"]["engine"] for j in jobs] == ["wan-animate-2", "wan-animate"]
    assert len({ref["channel"], *(t["channel"] for t in takes)}) == 3  # one channel each
    assert all(x["start"] == 1 and x["duration"] == 8 for x in comp["strips"]) and comp["frames"] == [1, 8]
    # Side by side at one height: each take scaled to the canvas height, centred on its panel
    # (offsets from the canvas centre), the reference first, the labels over their takes.
    width, height = comp["resolution"]
    panels = [176 * height / 144] + [j["settings"]["width"] * height / j["settings"]["height"] for j in jobs]
    assert width == sum(round(p) for p in panels)
    assert ref["scale"] == pytest.approx(height / 144, abs=1e-3)
    left = 0.0
    for panel, strip in zip(panels, [ref, *takes], strict=True):
        assert strip["offset_x"] == pytest.approx(left + panel / 2 - width / 2, abs=1.0)
        left += panel
    for job, take, text in zip(jobs, takes, labels, strict=True):
        assert take["scale"] == pytest.approx(height / job["settings"]["height"], abs=1e-3)
        assert text["x"] == pytest.approx((take["offset_x"] + width / 2) / width, abs=0.01)
    # Takes of different clips (the playblast's and the clip's) are refused, saying why.
    assert r["mixed_result"] == ["CANCELLED"]
    assert "different reference clips" in r["mixed"]["report"]
    # Compare Take on one Animate-2 take: two columns (it draws no skeleton), the playblast's
    # frames as the reference.
    assert r["single_result"] == ["FINISHED"], r["single"]
    single = r["single"]["strips"]
    assert sorted(x["name"] for x in single) == ["reference", "result"]
    assert all(x["type"] == "IMAGE" for x in single)
    assert sorted(x["offset_x"] for x in single)[0] < 0 < sorted(x["offset_x"] for x in single)[1]

    # Generate from Animation: the nine animated frames rendered and used as the driving clip.
    assert r["animation_result"] == ["FINISHED"], r["animation_status"]
    (strip,) = r["animation_strips"]
    assert strip["missing"] == [] and strip["elements"] == 9 and strip["frame_start"] == 1
    job = strip["job"]
    assert job["engine"] == "wan-animate-2"
    playblast = Path(job["inputs"]["clip"]["path"])
    assert playblast.parent == out_dir and playblast.name.endswith("_playblast_000")
    frames = sorted(playblast.glob("frame_*.png"))
    assert len(frames) == 9
    from PIL import Image

    first, last = (Image.open(p).convert("L") for p in (frames[0], frames[-1]))
    assert first.size == (job["settings"]["width"], job["settings"]["height"])
    # The monkey moved: the playblast shows the animation, not one still.
    assert first.tobytes() != last.tobytes()
    assert r["resolution_after"] == [160, 120]  # the scene's own render settings restored
    assert r["armatures_animation"] == []  # no skeleton projected for a video engine
