"""Replace mode's mask on a full-body shot: it must cover the performer head to ankles, legs
included, or the old performer's legs stay in the plate. Measured on a mannequin rendered in
Blender doing jumping jacks, with its joints as the answer key."""

from __future__ import annotations

import cv2
import numpy as np
from backend_proc import BackendProc
from PIL import Image
from rendered_clips import render_clip

W, H, FRAMES = 320, 240, 17
# The body's bones between COCO joints (shoulders, arms, torso sides, hips, legs) and the head.
BONES = [
    (5, 6),
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 11),
    (6, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
]
LEGS = [(11, 13), (13, 15), (12, 14), (14, 16)]


def _body_mask(j: dict, bones: list, width: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    for a, b in bones:
        cv2.line(m, tuple(int(v) for v in j[a]), tuple(int(v) for v in j[b]), 1, width)
    return m.astype(bool)


def test_the_replace_mask_covers_the_whole_body_legs_included(
    tmp_path, backend_python, tiny_model, astronaut_png
):
    person = {"shirt": (0.15, 0.3, 0.7), "start": [-0.3, 0.0], "end": [0.3, 0.0]}
    clip, truth = render_clip(tmp_path, "full", [person], W, H, FRAMES)
    truth = [frame[0] for frame in truth]

    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        body = {
            "character_path": str(astronaut_png),
            "clip_path": str(clip),
            "settings": {"width": W, "height": H, "steps": 1, "segment_frames": 17, "mode": "replace"},
        }
        result = b.run_job(body)
    finally:
        b.stop()
    body_cover, leg_cover, hull_cover = [], [], []
    for n in range(FRAMES):
        mask = np.asarray(Image.open(result / "mask" / f"mask_{n + 1:06d}.png").convert("L")) > 0
        j = truth[n]
        limbs = _body_mask(j, BONES, 5)
        legs = _body_mask(j, LEGS, 5)
        hull = np.zeros((H, W), np.uint8)
        pts = np.array([j[k] for k in (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)], np.int32)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
        body_cover.append(mask[limbs].mean())
        leg_cover.append(mask[legs].mean())
        hull_cover.append(mask[hull.astype(bool)].mean())
        if n == FRAMES // 2:
            Image.fromarray((np.dstack([mask, limbs, legs]) * 255).astype(np.uint8)).save(
                tmp_path / "mask_vs_body.png"
            )
    print(
        f"mask covers the body's bones {np.mean(body_cover):.1%} (worst frame {np.min(body_cover):.1%}), "
        f"legs {np.mean(leg_cover):.1%}, the keypoint hull {np.mean(hull_cover):.1%}"
    )
    assert np.min(leg_cover) >= 0.95, leg_cover  # the legs are regenerated, not left in the plate
    assert np.mean(body_cover) >= 0.95, body_cover
    assert np.mean(hull_cover) >= 0.85, hull_cover
