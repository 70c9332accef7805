"""Pose frames at the official preprocessing's sizing, whole frame against whole frame.

The official pipeline resizes each clip frame to the output's area at the clip's aspect
(its resize_by_area: sides floored to 16, fitted with padding), draws the skeleton on a
canvas of that size, and fits the drawing into the output with padding and linear
interpolation. The transcription below follows those steps as the official code takes them
(on an image, with the keypoints found in the resized frame); the backend must give the
same frames, pixel for pixel, for clips whose size differs from the output's."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from backend.preprocess.clip_reading import model_frame_sources
from backend.preprocess.pose_format import draw_pose_frame, draw_pose_official


def _official_resize_by_area(img: np.ndarray, area: int, divisor: int = 16) -> np.ndarray:
    h, w = img.shape[:2]
    new_h = math.sqrt(area / (w / h))
    new_w = area / new_h
    new_w, new_h = int((new_w // divisor) * divisor), int((new_h // divisor) * divisor)
    interp = cv2.INTER_AREA if new_w * new_h < w * h else cv2.INTER_LINEAR
    return _official_padding_resize(img, new_h, new_w, interp)


def _official_padding_resize(img: np.ndarray, height: int, width: int, interp=cv2.INTER_LINEAR) -> np.ndarray:
    oh, ow = img.shape[:2]
    pad = np.zeros((height, width, img.shape[2]), np.uint8)
    if oh / ow > height / width:
        nw = int(height / oh * ow)
        left = int((width - nw) / 2)
        pad[:, left : left + nw] = cv2.resize(img, (nw, height), interpolation=interp)
    else:
        nh = int(width / ow * oh)
        top = int((height - nh) / 2)
        pad[top : top + nh, :] = cv2.resize(img, (width, nh), interpolation=interp)
    return pad


def _performer(w: int, h: int) -> np.ndarray:
    """A whole body in clip pixels (arms out, one knee bent, hands open), confidences 0.9."""
    k = np.zeros((133, 3))
    body = {0: (0.50, 0.20), 1: (0.52, 0.18), 2: (0.48, 0.18), 3: (0.54, 0.19), 4: (0.46, 0.19),
            5: (0.58, 0.30), 6: (0.42, 0.30), 7: (0.66, 0.38), 8: (0.34, 0.40), 9: (0.72, 0.46),
            10: (0.30, 0.50), 11: (0.55, 0.55), 12: (0.45, 0.55), 13: (0.57, 0.70), 14: (0.40, 0.68),
            15: (0.58, 0.86), 16: (0.43, 0.85), 17: (0.60, 0.88), 18: (0.61, 0.88), 19: (0.57, 0.88),
            20: (0.41, 0.87), 21: (0.40, 0.87), 22: (0.44, 0.87)}  # fmt: skip
    for i, (x, y) in body.items():
        k[i] = (x * w, y * h, 0.9)
    for hand, (wx, wy) in ((91, (0.72, 0.46)), (112, (0.30, 0.50))):
        for j in range(21):
            ang = (j // 4) * 0.35 - 0.7
            r = 0.01 + 0.008 * (j % 4 + 1) if j else 0.0
            k[hand + j] = (wx * w + r * w * math.cos(ang), wy * h - r * h * math.sin(ang + 1.2), 0.9)
    return k


@pytest.mark.parametrize(
    "clip, out",
    [
        ((1920, 1080), (1280, 720)),
        ((1280, 720), (832, 480)),
        ((720, 1280), (480, 832)),
        ((640, 480), (832, 480)),
    ],
)
def test_pose_frames_match_the_official_sizing_whole_frame(clip, out):
    (cw, ch), (ow, oh) = clip, out
    kps = _performer(cw, ch)
    # The official order: the frame is resized, the keypoints are found in the resized frame
    # (here: where the resize puts them), the skeleton drawn on a canvas of that size, then fitted.
    frame = np.zeros((ch, cw, 3), np.uint8)
    resized = _official_resize_by_area(frame, ow * oh)
    rh, rw = resized.shape[:2]
    if ch / cw > rh / rw:
        nw, nh, left, top = int(rh / ch * cw), rh, int((rw - int(rh / ch * cw)) / 2), 0
    else:
        nw, nh, left, top = rw, int(rw / cw * ch), 0, int((rh - int(rw / cw * ch)) / 2)
    found = kps.copy()
    found[:, 0] = kps[:, 0] * nw / cw + left
    found[:, 1] = kps[:, 1] * nh / ch + top
    expected = _official_padding_resize(draw_pose_frame(found, rh, rw), oh, ow)

    got = draw_pose_official(kps, cw, ch, ow, oh)
    assert got.shape == expected.shape == (oh, ow, 3)
    assert np.array_equal(got, expected)

    # Drawing straight at the output size (what the backend did before) is another picture.
    s = min(ow / cw, oh / ch)
    direct_kps = kps.copy()
    direct_kps[:, 0] = kps[:, 0] * s + (ow - cw * s) / 2
    direct_kps[:, 1] = kps[:, 1] * s + (oh - ch * s) / 2
    direct = draw_pose_frame(direct_kps, oh, ow)
    ink = (expected.max(axis=2) > 0) | (direct.max(axis=2) > 0)
    differ = (np.abs(expected.astype(int) - direct.astype(int)).max(axis=2) > 8) & ink
    print(
        f"{clip} -> {out}: {differ.sum() / ink.sum():.0%} of the skeleton's pixels differ when drawn at the output size"
    )


@pytest.mark.parametrize("fps, n", [(24, 11), (29.97, 120), (25, 7), (30, 31), (59.94, 100), (23.976, 250)])
def test_thirty_fps_frame_count_and_indices_follow_the_official_rule(fps, n):
    count = int(n / fps * 30)  # truncated
    indices = np.clip(np.round(np.arange(count) / 30 * fps).astype(int), 0, n - 1).tolist()
    assert model_frame_sources(n, fps) == indices
