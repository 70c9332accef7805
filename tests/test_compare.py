"""Compare Take: reference, skeleton and result side by side, frame-aligned."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from conftest import NEWEST, run_blender


@NEWEST
def test_compare_lays_out_reference_skeleton_and_result(
    bl, tmp_path, backend_python, tiny_model, extension_zip, carphone_clip
):
    render = tmp_path / "compare.png"
    r = run_blender(
        bl,
        "compare.py",
        {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "clip": str(carphone_clip),
            "frame": 40,
            "render": str(render),
        },
        tmp_path,
    )
    w3, h = r["res"]
    w = w3 // 3
    assert set(r["strips"]) == {"reference", "skeleton", "result"}
    assert r["strips"]["skeleton"][1] == r["strips"]["result"][1] == r["frame_count"]
    assert sorted(v[2] for v in r["strips"].values()) == [-w, 0, w]
    assert r["artist_scene_strips"] == 1  # the artist's own scene keeps just its result strip
    img = cv2.imread(str(render))
    assert img.shape[:2] == (h, w3)
    job = Path(r["job_dir"])
    result = cv2.imread(str(job / "frame_000041.png"))
    pose = cv2.imread(str(job / "pose" / f"pose_{r['model_frame'] + 1:06d}.png"))
    assert np.abs(img[:, 2 * w :].astype(int) - result.astype(int)).mean() < 3
    assert np.abs(img[:, w : 2 * w].astype(int) - pose.astype(int)).mean() < 3
    assert img[:, :w].mean() > 30  # the reference video, not black
