"""The pose frames follow the Wan-Animate drawing spec (shared/reference/wan-animate.md)
on fixed keypoints, and the face crop follows the official box rule."""

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


# The specification (shared/reference/wan-animate.md), transcribed here on its own so that a whole
# frame can be compared pixel for pixel: 1-based bones over the 20 points, palette, 0.6 bones,
# full-colour joints of radius = half-width, hands (91-111 left, 112-132 right) with HSV edges of
# thickness max(half-width // 2, 1) and blue joints, nothing under confidence 0.5. Primitives as the
# official renderer uses them: cv2.ellipse2Poly at 1 degree filled convex, cv2.line, cv2.circle,
# coordinates truncated to int.
SPEC_A = [0, 6, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 17, 20]
SPEC_B = [0, 5, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 18, 21]
SPEC_BONES = [[2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12],
              [12, 13], [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [14, 19], [11, 20]]  # fmt: skip
SPEC_COLOURS = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
                [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
                [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
                [200, 200, 0], [100, 100, 0]]  # fmt: skip
SPEC_HAND = [[0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [0, 9], [9, 10], [10, 11],
             [11, 12], [0, 13], [13, 14], [14, 15], [15, 16], [0, 17], [17, 18], [18, 19], [19, 20]]  # fmt: skip


def spec_frame(kps: np.ndarray, h: int, w: int) -> np.ndarray:
    import colorsys
    import math

    import cv2

    img = np.zeros((h, w, 3), np.uint8)
    body = (kps[SPEC_A] + kps[SPEC_B]) / 2
    half = max(int(min(h, w) / 200) - 1, 1)
    for (a, b), colour in zip(SPEC_BONES, SPEC_COLOURS, strict=False):
        p, q = body[a - 1], body[b - 1]
        if p[2] < 0.5 or q[2] < 0.5:
            continue
        centre = (int((p[0] + q[0]) / 2), int((p[1] + q[1]) / 2))
        axes = (int(math.dist(p[:2], q[:2]) / 2), half)
        angle = int(math.degrees(math.atan2(p[1] - q[1], p[0] - q[0])))
        cv2.fillConvexPoly(
            img, cv2.ellipse2Poly(centre, axes, angle, 0, 360, 1), [int(c * 0.6) for c in colour]
        )
    for p, colour in zip(body, SPEC_COLOURS, strict=True):
        if p[2] >= 0.5:
            cv2.circle(img, (int(p[0]), int(p[1])), half, colour, -1)
    for hand in (kps[91:112], kps[112:133]):
        for i, (a, b) in enumerate(SPEC_HAND):
            p, q = hand[a], hand[b]
            if p[2] >= 0.5 and q[2] >= 0.5 and min(int(p[0]), int(p[1]), int(q[0]), int(q[1])) > 0:
                rgb = [c * 255 for c in colorsys.hsv_to_rgb(i / len(SPEC_HAND), 1.0, 1.0)]
                cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), rgb, max(half // 2, 1))
        for p in hand:
            if p[2] >= 0.5 and int(p[0]) > 0 and int(p[1]) > 0:
                cv2.circle(img, (int(p[0]), int(p[1])), max(half // 2, 1), (0, 0, 255), -1)
    return img


@pytest.mark.parametrize(("h", "w"), [(480, 832), (720, 1280), (1280, 720)])
def test_a_whole_frame_matches_the_specification_pixel_for_pixel(h, w):
    rng = np.random.default_rng(h)
    kps = np.zeros((133, 3))
    # A figure spread over the frame at sub-pixel positions; some points too weak to draw.
    kps[:, 0] = rng.uniform(0.1, 0.9, 133) * w
    kps[:, 1] = rng.uniform(0.1, 0.9, 133) * h
    kps[:, 2] = rng.choice([0.3, 0.49, 0.5, 0.8, 1.0], 133)
    ours, spec = draw_pose_frame(kps, h, w), spec_frame(kps, h, w)
    assert ours.any()
    assert np.array_equal(ours, spec), f"{np.count_nonzero((ours != spec).any(axis=2))} pixels differ"
