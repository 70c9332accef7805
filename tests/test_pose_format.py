"""The pose frames' drawing style on fixed keypoints, read off as facts (stroke widths, colours,
the confidence cut, the neck, hand edges), and the face crop's box rule. The whole drawing and
the face boxes are compared with the official code itself in tests/test_official_preprocess.py."""

from __future__ import annotations

import numpy as np
import pytest

from backend.preprocess.pose_format import (
    BODY_SRC_A,
    BODY_SRC_B,
    PALETTE,
    body_halfwidth,
    draw_pose_frame,
    face_box,
)


def body_point(kps, i, x, y, c=1.0):
    """Place drawn body point i (0-based) by setting both of its COCO source rows."""
    kps[BODY_SRC_A[i]] = (x, y, c)
    kps[BODY_SRC_B[i]] = (x, y, c)


@pytest.mark.parametrize("h, w, hw", [(480, 832, 1), (720, 1280, 2), (200, 200, 1)])
def test_halfwidth_rule(h, w, hw):
    assert body_halfwidth(h, w) == hw


def test_bone_colour_brightness_joints_and_threshold():
    h, w = 720, 1280
    kps = np.zeros((133, 3))
    # RElbow (3) -> RWrist (4) is bone [4, 5], the fourth in the list: palette[3] at 0.6.
    body_point(kps, 3, 400, 300)
    body_point(kps, 4, 600, 300)
    img = draw_pose_frame(kps, h, w)
    r, g, b = PALETTE[3]
    assert tuple(img[300, 500]) == (int(r * 0.6), int(g * 0.6), int(b * 0.6))
    hw = body_halfwidth(h, w)
    assert np.count_nonzero(img[:, 500].any(axis=1)) == 2 * hw + 1  # the ellipse's full width
    assert tuple(img[300, 400]) == PALETTE[3]  # joints: full colour, indexed by point
    assert tuple(img[300, 600]) == PALETTE[4]
    mask = img.any(axis=2)
    assert mask[:, : 400 - hw - 1].sum() == 0 and mask[:, 600 + hw + 1 :].sum() == 0

    weak = kps.copy()
    body_point(weak, 4, 600, 300, 0.49)
    img2 = draw_pose_frame(weak, h, w)
    assert not img2[300, 500].any() and not img2[300, 600].any()  # below 0.5: bone and joint vanish
    assert tuple(img2[300, 400]) == PALETTE[3]


def test_neck_is_the_mean_of_both_shoulders_position_and_confidence():
    kps = np.zeros((133, 3))
    kps[5] = (300, 300, 0.2)  # left shoulder, weak
    kps[6] = (500, 300, 0.9)  # right shoulder
    img = draw_pose_frame(kps, 720, 1280)
    assert tuple(img[300, 400]) == PALETTE[1]  # neck at the mean, confidence 0.55
    assert tuple(img[300, 500]) == PALETTE[2]
    assert not img[300, 300].any()  # the weak shoulder itself is not drawn
    kps[5, 2] = 0.0
    assert not draw_pose_frame(kps, 720, 1280)[300, 400].any()  # neck confidence 0.45


def test_hand_edges_and_blue_joints():
    h, w = 720, 1280
    kps = np.zeros((133, 3))
    kps[91] = (100, 100, 1.0)  # left wrist
    kps[92] = (140, 100, 1.0)  # thumb 1
    img = draw_pose_frame(kps, h, w)
    assert tuple(img[100, 100]) == (0, 0, 255) and tuple(img[100, 140]) == (0, 0, 255)
    assert tuple(img[100, 120]) == (255, 0, 0)  # edge 0: hue 0/20 -> red
    kps[112] = (300, 300, 1.0)
    kps[113 + 3] = (300, 340, 1.0)  # right thumb tip, not connected to the wrist directly
    img = draw_pose_frame(kps, h, w)
    assert not img[320, 300].any()


def test_face_box_rule():
    kps = np.zeros((133, 3))
    xs = np.linspace(100, 200, 68)
    kps[23:91, 0] = xs
    kps[23:91, 1] = xs[::-1]
    kps[23:91, 2] = 1.0
    # area x1.3 at the same aspect; width grows evenly, height 3/4 up and 1/4 down.
    assert face_box(kps, 1000, 1000) == (92, 89, 207, 203)
    assert face_box(kps, 150, 150) == (92, 89, 150, 150)  # clamped to the frame
    assert face_box(np.zeros((133, 3)), 100, 100) is None
