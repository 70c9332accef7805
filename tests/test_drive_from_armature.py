"""Motion from a Blender animation: an armature's joints through the camera drive the
generation, with no reference clip; the face is a given photo or the neutral default."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import RANGE_ENDS, run_blender

from backend.protocol import PALETTE
from wan_animate_blender.core.rig_mapping import build_mapping, detect_scheme, parse_overrides


def test_rig_naming_is_recognised_and_overridable():
    rigify = ["DEF-upper_arm.L", "DEF-forearm.L", "DEF-hand.L", "DEF-thigh.L", "DEF-shin.L", "DEF-spine.004"]
    mixamo = ["mixamorig:LeftArm", "mixamorig:LeftForeArm", "mixamorig:LeftHand", "mixamorig:Neck"]
    plain = ["upper_arm.L", "forearm.L", "hand.L", "neck", "head"]
    assert detect_scheme(rigify) == "rigify"
    assert detect_scheme(mixamo) == "mixamo"
    assert detect_scheme(plain) == "plain"
    _, m = build_mapping(mixamo)
    assert m["LWrist"].bone == "mixamorig:LeftHand" and m["LWrist"].end == "head"
    assert "RWrist" not in m  # no such bone on this rig: the point is left out, not guessed
    _, m = build_mapping(plain + ["wrist_L"], "LWrist=wrist_L:tail")
    assert (m["LWrist"].bone, m["LWrist"].end) == ("wrist_L", "tail")
    with pytest.raises(ValueError, match="should look like"):
        parse_overrides("LWrist")


@RANGE_ENDS
def test_generate_from_an_animated_armature_without_a_clip(
    bl, tmp_path, backend_python, tiny_model, extension_zip, astronaut_png
):
    r = run_blender(
        bl,
        "drive.py",
        {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "face": str(astronaut_png),
        },
        tmp_path,
    )
    photo, neutral = r["runs"]
    for run in (photo, neutral):
        assert run["result"] == ["FINISHED"], run["status"]
        assert run["strips"] and run["strips"][0][1] == 20  # the scene's 20 frames
        assert run["clip"] is None
    assert photo["estimator"] == "Blender animation, face from image"
    assert neutral["estimator"] == "Blender animation, neutral face"
    assert r["guides"] == []  # the rig itself is the guide; no detections to turn into one
    job = Path(photo["job_dir"])
    # model frame 10 at 30 fps is scene frame round(10 * 24 / 30) + 1 = 9
    pose = cv2.cvtColor(cv2.imread(str(job / "pose" / "pose_000011.png")), cv2.COLOR_BGR2RGB)
    x, y = r["wrist_px"]
    assert (pose[int(y), int(x)] == np.array(PALETTE[7])).all()  # LWrist's joint colour
    face = cv2.imread(str(job / "face" / "face_000001.png"))
    grey = cv2.imread(str(Path(neutral["job_dir"]) / "face" / "face_000001.png"))
    assert face.std() > 20  # a real face crop from the photo
    assert (grey == 128).all()
