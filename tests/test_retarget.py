"""Retargeting: the performer's motion drawn on the character's proportions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from backend_proc import BackendProc

from backend.preprocess.pose_format import wholebody_to_body20
from backend.preprocess.retarget import ORDER, PARENT, character_ratios, retarget
from backend.protocol import BODY_SRC_A, BODY_SRC_B

# A standing figure in body-20 points (0-based): nose, neck, right arm, left arm, hips, legs...
STAND = {
    0: (200, 100), 1: (200, 140), 2: (170, 140), 3: (160, 190), 4: (155, 240), 5: (230, 140),
    6: (240, 190), 7: (245, 240), 8: (185, 250), 9: (185, 320), 10: (185, 390), 11: (215, 250),
    12: (215, 320), 13: (215, 390), 14: (195, 95), 15: (205, 95), 16: (188, 98), 17: (212, 98),
    18: (220, 400), 19: (180, 400),
}  # fmt: skip


def wholebody(points: dict[int, tuple[float, float]], conf: float = 1.0) -> np.ndarray:
    """(133, 3) keypoints whose body-20 projection is ``points``."""
    kps = np.zeros((133, 3))
    for i, (x, y) in points.items():
        kps[BODY_SRC_A[i]] = (x, y, conf)
        kps[BODY_SRC_B[i]] = (x, y, conf)
    return kps


def lengths(body: np.ndarray) -> dict[int, float]:
    return {c: float(np.hypot(*(body[c, :2] - body[p, :2]))) for c, p in PARENT.items()}


def test_bones_take_the_characters_lengths_and_keep_the_performers_directions():
    rng = np.random.default_rng(0)
    # The performer moves: every frame the points wander a little.
    driver = []
    for _t in range(10):
        pts = {i: (x + rng.normal(0, 6), y + rng.normal(0, 6)) for i, (x, y) in STAND.items()}
        driver.append(wholebody(pts))
    # The character: legs 1.5x longer, arms 0.8x, drawn elsewhere in its image.
    char = {1: (100.0, 50.0)}  # built outwards from the neck
    for c in ORDER:
        p = PARENT[c]
        scale = 1.5 if c in (9, 10, 12, 13, 18, 19) else 0.8 if c in (3, 4, 6, 7) else 1.0
        dx, dy = np.subtract(STAND[c], STAND[p]) * scale
        char[c] = (char[p][0] + dx, char[p][1] + dy)
    ratios = character_ratios(driver, wholebody(char))
    assert abs(ratios[10] / ratios[3] - 1.5 / 0.8) < 0.1  # shin vs upper arm, relative to the first frame

    out = retarget(driver, ratios)
    # In the frame the ratios were measured on, every bone has the character's own length.
    want = lengths(wholebody_to_body20(wholebody(char)))
    got = lengths(out[0][:20])
    assert all(abs(got[c] - want[c]) < 1e-6 for c in PARENT)
    for frame, kps in zip(out, driver, strict=True):
        body = frame[:20]
        src = wholebody_to_body20(kps)
        for c, p in PARENT.items():
            v_new = body[c, :2] - body[p, :2]
            v_old = src[c, :2] - src[p, :2]
            # The direction is the performer's; the length is theirs times the bone's ratio.
            assert np.allclose(v_new, v_old * ratios[c], atol=1e-6)
    # Ground aligned: in the first frame the lowest foot is where the performer's was.
    src0 = wholebody_to_body20(driver[0])
    feet = [10, 13, 18, 19]
    assert abs(out[0][feet, 1].max() - src0[feet, 1].max()) < 1e-6


def test_a_character_image_without_a_body_is_not_used():
    driver = [wholebody(STAND)]
    head_only = wholebody({0: (100, 100), 14: (95, 95), 15: (105, 95)})
    assert character_ratios(driver, head_only) is None


def test_missing_performer_joints_stay_missing():
    pts = dict(STAND)
    kps = wholebody(pts)
    kps[BODY_SRC_A[3]] = (0, 0, 0.0)  # right elbow lost
    kps[BODY_SRC_B[3]] = (0, 0, 0.0)
    out = retarget([kps], dict.fromkeys(PARENT, 1.2))[0]
    assert out[3, 2] == 0.0 and out[4, 2] == 0.0  # the elbow and the wrist hanging from it
    assert out[6, 2] > 0.5  # the other arm is there


def test_jobs_retarget_by_default_and_not_when_switched_off(
    tmp_path, backend_python, tiny_model, astronaut_png, carphone_clip
):
    b = BackendProc(backend_python, tmp_path / "data", tiny_model)
    try:
        res = {}
        for setting in ("auto", "off"):
            body = {
                "character_path": str(astronaut_png),
                "clip_path": str(carphone_clip),
                "settings": {
                    "width": 64,
                    "height": 48,
                    "steps": 1,
                    "segment_frames": 17,
                    "clip_frames": 17,
                    "retarget": setting,
                },
            }
            st, _ = b.wait(b.post("/v1/jobs", json=body).json()["id"], timeout=600)
            assert st["state"] == "done", st
            res[setting] = Path(st["result_dir"])
        on = json.loads((res["auto"] / "job.json").read_text())["retarget"]
        off = json.loads((res["off"] / "job.json").read_text())["retarget"]
        assert off == {"applied": False, "why": "off"}
        assert on["applied"] is True, on
        assert on["length_ratio_by_bone_end"]["RShoulder"] > 0
        pose_on = sorted((res["auto"] / "pose").glob("*.png"))
        pose_off = sorted((res["off"] / "pose").glob("*.png"))
        assert len(pose_on) == len(pose_off) and any(
            a.read_bytes() != c.read_bytes() for a, c in zip(pose_on, pose_off, strict=True)
        )
        bad = b.post(
            "/v1/jobs", json={**body, "settings": {**body["settings"], "retarget": "on", "mode": "replace"}}
        )
        assert bad.status_code == 400 and "animate mode" in bad.json()["detail"]
    finally:
        b.stop()
