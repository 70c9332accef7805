"""Retargeting: the performer's motion drawn on the character's proportions, by the official
Wan-Animate preprocessing's rule (its retarget_pose.py).

The rule's facts are checked here on a concrete pair: a performer standing in a 640x480 clip
and a character twice as tall with short arms (the left upper arm shorter still, the eyes set
unevenly) standing in a 512x704 image; and the backend's own choices where the official has
none (a character without shoulders, a performer walking in). Points and frames against the
official code itself: tests/test_official_retarget.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from backend_proc import BackendProc

from backend.preprocess.pose_format import wholebody_to_body20
from backend.preprocess.retarget import CharacterPose, measured_frame, plan_retarget
from backend.protocol import BODY_SRC_A, BODY_SRC_B, RIGHT_HAND_SLICE

CLIP_W, CLIP_H = 640, 480
CANVAS_W, CANVAS_H = 512, 704
# A standing figure in body-20 points (0-based): nose, neck, right arm, left arm, hips, legs...
STAND = {
    0: (200, 100), 1: (200, 140), 2: (170, 140), 3: (160, 190), 4: (155, 240), 5: (230, 140),
    6: (240, 190), 7: (245, 240), 8: (185, 250), 9: (185, 320), 10: (185, 390), 11: (215, 250),
    12: (215, 320), 13: (215, 390), 14: (195, 95), 15: (205, 95), 16: (188, 98), 17: (212, 98),
    18: (220, 400), 19: (180, 400),
}  # fmt: skip
PARENT = {
    2: 1,
    5: 1,
    3: 2,
    4: 3,
    6: 5,
    7: 6,
    8: 1,
    9: 8,
    10: 9,
    11: 1,
    12: 11,
    13: 12,
    0: 1,
    14: 0,
    16: 14,
    15: 0,
    17: 15,
    18: 13,
    19: 10,
}  # fmt: skip  (parents first)
# The character's bone lengths against the performer's: twice as tall, arms 1.2x (short for a
# figure twice the size), the left upper arm 1.0x, the right eye set wider, the left narrower.
CHAR_SCALE = {**dict.fromkeys(PARENT, 2.0), 3: 1.2, 4: 1.2, 7: 1.2, 6: 1.0, 14: 2.4, 15: 1.6}
CHAR_NECK = (256.0, 100.0)
HAND_ROOT = (157.0, 243.0)  # the right hand's own wrist point: 3-4 px from the body's wrist


def wholebody(points: dict[int, tuple[float, float]], conf: float | dict[int, float] = 0.9) -> np.ndarray:
    """(133, 3) keypoints whose body-20 projection is ``points``."""
    kps = np.zeros((133, 3))
    for i, (x, y) in points.items():
        c = conf.get(i, 0.9) if isinstance(conf, dict) else conf
        kps[BODY_SRC_A[i]] = (x, y, c)
        kps[BODY_SRC_B[i]] = (x, y, c)
    return kps


def character_points(scale: dict[int, float] = CHAR_SCALE) -> dict[int, tuple[float, float]]:
    pts = {1: CHAR_NECK}
    for c, p in PARENT.items():
        d = np.subtract(STAND[c], STAND[p]) * scale[c]
        pts[c] = (pts[p][0] + d[0], pts[p][1] + d[1])
    return pts


def with_right_hand(kps: np.ndarray) -> np.ndarray:
    """An open right hand; one point seen at 0.45 (kept, not drawn), one at 0.3 (dropped)."""
    kps = kps.copy()
    hand = np.zeros((21, 3))
    for j in range(21):
        ang = (j // 4) * 0.4 - 0.6
        r = 4.0 * (j % 4 + 1) if j else 0.0
        hand[j] = (HAND_ROOT[0] + r * math.sin(ang), HAND_ROOT[1] + r * math.cos(ang), 0.9)
    hand[7, 2], hand[12, 2] = 0.45, 0.3
    kps[RIGHT_HAND_SLICE] = hand
    return kps


@pytest.fixture(scope="module")
def pair():
    performer = with_right_hand(wholebody(STAND))
    character = CharacterPose(wholebody(character_points()), CANVAS_W, CANVAS_H)
    return performer, character


def body_of(points62: np.ndarray) -> np.ndarray:
    return points62[:20]


def test_ratios_take_the_larger_side_average_the_eyes_and_come_at_one_height(pair):
    performer, character = pair
    plan = plan_retarget(performer, CLIP_W, CLIP_H, character)
    # Heights nose to ankles: 290 px against 580 px.
    assert plan.scale == pytest.approx(0.5)
    r = plan.ratio_by_bone_end()
    assert r[2] == pytest.approx(1.0) and r[10] == pytest.approx(1.0)  # shoulders, shins: as tall
    assert r[3] == r[6] == pytest.approx(0.6)  # upper arms: the right's 0.6, not the left's 0.5
    assert r[4] == r[7] == pytest.approx(0.6)
    assert r[14] == r[15] == pytest.approx(1.0)  # nose-eye: 1.2 and 0.8 averaged
    assert plan.placed_by == "feet"


def test_the_figure_stands_where_the_character_stands(pair):
    performer, character = pair
    plan = plan_retarget(performer, CLIP_W, CLIP_H, character)
    out = body_of(plan.apply(performer))
    char = wholebody_to_body20(character.keypoints)
    # The hip centre over the character's; the lower ankle on the character's lower
    # ankle-toe midpoint (600 and 620: 610).
    assert (out[8, 0] + out[11, 0]) / 2 == pytest.approx((char[8, 0] + char[11, 0]) / 2)
    assert max(out[10, 1], out[13, 1]) == pytest.approx(610.0)
    # Bones: the performer's length x ratio / scale; the left upper arm is longer than the
    # character's own (the larger side's ratio), the rest the character's.
    for c, p in PARENT.items():
        got = math.dist(out[c, :2], out[p, :2])
        want = math.dist(STAND[c], STAND[p]) * plan.ratio_by_bone_end()[c] / 0.5
        assert got == pytest.approx(want), c
    assert math.dist(out[6, :2], out[5, :2]) == pytest.approx(1.2 * math.dist(STAND[6], STAND[5]))
    # A later frame keeps its own motion: a jump of 30 clip pixels is 60 character pixels.
    jump = {i: (x, y - 30) for i, (x, y) in STAND.items()}
    up = body_of(plan.apply(wholebody(jump)))
    assert np.allclose(up[:, 1], out[:, 1] - 60)


def test_hands_scale_by_the_shoulder_ratio_and_hang_from_the_new_wrist(pair):
    performer, character = pair
    plan = plan_retarget(performer, CLIP_W, CLIP_H, character)
    pts = plan.apply(performer)
    hand, src = pts[41:62], performer[RIGHT_HAND_SLICE]
    wrist = pts[4, :2]
    assert plan.hand_ratio == pytest.approx(2.0)  # shoulder ratio 1.0 at scale 0.5, not the forearm's
    for j in range(21):
        if j == 12:
            assert hand[j, 2] == 0.0  # seen at 0.3: below the official's 0.4
            continue
        want = np.trunc(wrist + (src[j, :2] - src[0, :2]) * 2.0)
        assert np.array_equal(hand[j, :2], want) and hand[j, 2] == src[j, 2], j


def test_a_foot_is_at_most_half_its_shin():
    character = CharacterPose(wholebody(character_points()), CANVAS_W, CANVAS_H)
    plan = plan_retarget(wholebody(STAND), CLIP_W, CLIP_H, character)
    long_foot = {**STAND, 19: (245.0, 390.0)}  # 60 px from the ankle; the shin is 70
    out = body_of(plan.apply(wholebody(long_foot)))
    shin = math.dist(out[9, :2], out[10, :2])
    assert math.dist(out[10, :2], out[19, :2]) == pytest.approx(shin / 2)
    assert out[19, 0] > out[10, 0] and out[19, 1] == pytest.approx(out[10, 1])  # its direction kept
    assert math.dist(out[13, :2], out[18, :2]) < shin / 2  # the short foot is left alone


def test_ratios_ignore_confidence_and_missing_bones_take_the_shoulders_mean():
    character = CharacterPose(wholebody(character_points()), CANVAS_W, CANVAS_H)
    # Frame 0: the left knee seen at 0.1 (and 20 px high), the right elbow not given at all.
    first = wholebody({**STAND, 12: (215.0, 300.0)}, conf={12: 0.1})
    first[BODY_SRC_A[3]] = first[BODY_SRC_B[3]] = 0.0
    r = plan_retarget(first, CLIP_W, CLIP_H, character).ratio_by_bone_end()
    # Left thigh 140 / 50 at scale 0.5 = 1.4: the unsure knee counts, and both thighs take it.
    assert r[12] == r[9] == pytest.approx(1.4)
    # Right upper arm and forearm unknown: the shoulders' mean (1.0), then the larger side.
    assert r[3] == r[4] == r[6] == r[7] == pytest.approx(1.0)


def test_without_whole_bodies_the_neck_goes_on_the_characters_neck():
    seated = wholebody(character_points(), conf={10: 0.3, 13: 0.3, 18: 0.3, 19: 0.3})  # feet unsure
    plan = plan_retarget(wholebody(STAND), CLIP_W, CLIP_H, CharacterPose(seated, CANVAS_W, CANVAS_H))
    assert plan.placed_by == "neck"
    assert np.allclose(body_of(plan.apply(wholebody(STAND)))[1, :2], CHAR_NECK)


def test_a_performer_walking_in_is_measured_on_the_first_frame_that_shows_them():
    empty, later = np.zeros((133, 3)), wholebody({i: (x + 40, y) for i, (x, y) in STAND.items()})
    assert measured_frame([empty, later, wholebody(STAND)]) is later
    assert measured_frame([wholebody(STAND), later]) is not later  # the first frame, as the official


def test_a_character_image_without_shoulders_is_not_used():
    head_only = wholebody({0: (100, 100), 14: (95, 95), 15: (105, 95)})
    assert plan_retarget(wholebody(STAND), CLIP_W, CLIP_H, CharacterPose(head_only, 256, 256)) is None


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
        assert on["applied"] is True and on["rule"] == "official", on
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
