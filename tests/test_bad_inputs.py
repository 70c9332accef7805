"""Bad input, through the real operator, backend and model: a message that says
what to do, and nothing the artist made is touched."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import run_blender
from PIL import Image

from backend.preprocess.performer_pick import SURVEY_FRAMES


def _shapes_clip(path, frames=20):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24, (96, 96))
    for i in range(frames):
        img = np.full((96, 96, 3), 40, np.uint8)
        cv2.circle(img, (10 + 3 * i, 48), 8, (0, 200, 255), -1)
        w.write(img)
    w.release()


def test_bad_inputs_get_actionable_messages_and_lose_nothing(
    tmp_path, backend_python, tiny_model, extension_zip, carphone_clip
):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video")
    empty = tmp_path / "empty.mp4"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 64)).release()
    nobody = tmp_path / "nobody.mp4"
    _shapes_clip(nobody)
    alpha = tmp_path / "cutout.png"
    rgba = np.zeros((64, 48, 4), np.uint8)
    rgba[8:56, 8:40] = (200, 150, 100, 255)
    Image.fromarray(rgba, "RGBA").save(alpha)

    cases = [
        {"name": "missing", "clip": str(tmp_path / "gone.mp4")},
        {"name": "not_video", "clip": str(not_video)},
        {"name": "zero_frames", "clip": str(empty)},
        {"name": "no_person", "clip": str(nobody)},
        {"name": "alpha", "character": str(alpha)},
        {"name": "no_backend", "backend_python": str(tmp_path / "no-env" / "bin" / "python")},
    ]
    r = run_blender(
        "5.0",
        "bad_inputs.py",
        {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "good_clip": str(carphone_clip),
            "cases": cases,
        },
        tmp_path,
    )
    expect = {
        "missing": "was not found",
        "not_video": "Convert it to H.264",
        "zero_frames": "no decodable video frames",
        "no_person": "No person was found",
        "alpha": "turn off Film > Transparent",
        "no_backend": "Set up backend",
    }
    for name, fragment in expect.items():
        case = r[name]
        assert case["result"] == ["CANCELLED"], (name, case)
        assert fragment in case["error"], (name, case["error"])
        assert fragment in case["status"], (name, case["status"])
        assert case["unchanged"], name
        assert case["earlier_file"] == "artist's file"
    # A clip with nobody fails in the look before the pose pass, and leaves what it looked at.
    assert "looked at" in r["no_person"]["error"]
    kept = list((tmp_path / "out").rglob("no_performer_*"))
    assert len(kept) == 1, kept
    # Every frame the look surveyed is kept (the clip is longer than the survey).
    assert len(list(kept[0].glob("looked_at_clip_frame_*.png"))) == SURVEY_FRAMES
    # The still is the camera's view, not the strip on the timeline; the scene keeps its setting.
    still = np.asarray(Image.open(r["still"]["still"]).convert("RGB")).astype(int)
    camera = np.asarray(Image.open(r["still"]["camera"]).convert("RGB")).astype(int)
    # (the same view to within anti-aliasing at the edges; the clip frame would differ everywhere)
    assert np.abs(still - camera).mean() < 5 and r["still"]["use_sequencer_kept"]
