"""The backend's preprocessing steps against the official Wan2.2 code (wan22 2.2.11,
wan/modules/animate/preprocess), step by step on the same inputs: sizes, resizes, frame indices,
face boxes and crops, mask shaping and the skeleton drawing. Each official function is the
installed one (tests/official_oracle.py); the figures asked for are 0 differing pixels and 0
differing indices, face crops within 0.5 grey levels on average.

The end-to-end comparison (clip file and keypoints in, the frames the model reads out) is
tests/test_official_pipeline.py; retargeting is tests/test_official_retarget.py."""

from __future__ import annotations

import inspect
import math

import cv2
import numpy as np
import pytest
from official_oracle import official_function, preprocess

from backend.preprocess.character_image import fit_character
from backend.preprocess.clip_reading import model_frame_sources
from backend.preprocess.mask_shape import official_shape
from backend.preprocess.pose_format import (
    canvas_points,
    crop_face,
    draw_on_canvas,
    draw_pose_frame,
    face_box,
    official_size,
    padding_resize,
    resize_by_area,
)
from backend.preprocess.retarget import character_canvas

OFF = preprocess()
OUTPUTS = [(1280, 720), (832, 480), (720, 1280), (480, 832), (1024, 1024), (960, 544)]
IMAGES = [(1280, 720), (1920, 1080), (1080, 1920), (640, 480), (3840, 2160), (720, 1280), (832, 480),
          (480, 832), (176, 144), (1000, 1000), (1440, 1080), (4096, 2160), (2048, 858), (512, 704)]  # fmt: skip


# --- test inputs, shared with the other test_official_* files ---


def random_wholebody(rng: np.random.Generator, w: int, h: int, whole_pixels: bool = False) -> np.ndarray:
    """(133, 3) points anywhere in a ``w`` x ``h`` image and up to a tenth beyond its sides, every
    confidence in [0, 1] with some at and next to the 0.5 cut; hands and face included."""
    k = np.zeros((133, 3))
    k[:, 0] = rng.uniform(-0.1, 1.1, 133) * w
    k[:, 1] = rng.uniform(-0.1, 1.1, 133) * h
    k[:, 2] = rng.uniform(0.0, 1.0, 133)
    k[rng.choice(133, 12, replace=False), 2] = rng.choice([0.0, 0.4999, 0.5, 0.5001], 12)
    if whole_pixels:  # estimators that give whole pixels; also 1/1000 px, as keypoints.json keeps
        k[:, :2] = np.round(k[:, :2])
    else:
        k[:, :2] = np.round(k[:, :2], 3)
    return k


STANDING = {0: (0.50, 0.15), 1: (0.52, 0.13), 2: (0.48, 0.13), 3: (0.54, 0.14), 4: (0.46, 0.14),
            5: (0.58, 0.25), 6: (0.42, 0.25), 7: (0.64, 0.38), 8: (0.36, 0.38), 9: (0.68, 0.50),
            10: (0.32, 0.50), 11: (0.55, 0.55), 12: (0.45, 0.55), 13: (0.56, 0.72), 14: (0.44, 0.72),
            15: (0.57, 0.90), 16: (0.43, 0.90), 17: (0.60, 0.93), 18: (0.61, 0.93), 19: (0.57, 0.93),
            20: (0.40, 0.93), 21: (0.39, 0.93), 22: (0.43, 0.93)}  # fmt: skip


def performer(
    rng: np.random.Generator, w: int, h: int, t: float = 0.0, jitter: float = 0.01, whole_pixels: bool = False
) -> np.ndarray:
    """(133, 3): a person standing in a ``w`` x ``h`` frame, moving with ``t``, jittered; hands
    (sometimes both at the middle, overlapping), a face, confidences in (0, 1] straddling 0.5
    (neck and shoulders seen at 0.45 at least)."""
    k = np.zeros((133, 3))
    for i, (x, y) in STANDING.items():
        k[i] = (x + 0.05 * math.sin(t + i), y + 0.02 * math.cos(1.3 * t + i), 1.0)
    hands = ((0.68, 0.50), (0.32, 0.50)) if rng.uniform() < 0.6 else ((0.50, 0.50), (0.51, 0.49))
    for start, (wx, wy) in zip((91, 112), hands, strict=True):
        for j in range(21):
            a = 0.3 * j + t
            r = 0.04 if j else 0.0
            k[start + j] = (wx + r * math.cos(a), wy + r * math.sin(a), 1.0)
    for j in range(68):
        k[23 + j] = (
            0.5 + 0.025 * math.cos(j / 68 * 2 * math.pi),
            0.15 + 0.035 * math.sin(j / 68 * 2 * math.pi),
            1,
        )
    k[:, :2] += rng.normal(0, jitter, (133, 2))
    k[:, 0] *= w
    k[:, 1] *= h
    k[:, 2] = rng.uniform(0.02, 1.0, 133)
    k[[5, 6], 2] = rng.uniform(0.45, 1.0, 2)
    k[:, :2] = np.round(k[:, :2], 0 if whole_pixels else 3)
    return k


def textured(w: int, h: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` RGB frames of smooth colour waves (with a little noise) that move from frame to frame."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    noise = np.random.default_rng(seed).normal(0, 4, (h, w, 3)).astype(np.float32)
    out = []
    for i in range(n):
        r = 128 + 90 * np.sin(xx / 37.0 + i) * np.cos(yy / 53.0)
        g = 128 + 90 * np.sin((xx + yy) / 71.0 - 0.5 * i)
        b = 128 + 90 * np.cos(xx / 23.0 - yy / 41.0 + i)
        out.append(np.clip(np.dstack([r, g, b]) + noise, 16, 235).astype(np.uint8))
    return out


def official_meta(kps: np.ndarray, w: int, h: int) -> dict:
    """The official pose model's meta for keypoints found on a ``w`` x ``h`` image."""
    return OFF.pose2d_utils.load_pose_metas_from_kp2ds_seq(
        np.array(kps, np.float64)[None], width=w, height=h
    )[0]


def official_drawing(kps: np.ndarray, w: int, h: int) -> np.ndarray:
    """The official skeleton of keypoints found on a ``w`` x ``h`` image, drawn at that size."""
    meta = OFF.pose2d_utils.AAPoseMeta.from_humanapi_meta(official_meta(kps, w, h))
    return OFF.human_visualization.draw_aapose_by_meta_new(np.zeros((h, w, 3), np.uint8), meta)


def differing(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int((a != b).reshape(a.shape[0], a.shape[1], -1).any(axis=2).sum())


# --- sizes and resizes ---


def test_the_official_size_for_an_output_is_resize_by_area_at_divisor_16():
    """official_size against the size the official resize_by_area gives, for images portrait and
    landscape, small and 4K, into outputs portrait, landscape and square."""
    sizes = IMAGES + [(w, h) for w in range(100, 2100, 293) for h in range(100, 2100, 307)]
    mismatched = []
    for w, h in sizes:
        img = np.zeros((h, w, 1), np.uint8)
        for ow, oh in OUTPUTS:
            got = OFF.utils.resize_by_area(img, ow * oh, divisor=16).shape[1::-1]
            if tuple(got) != official_size(w, h, ow, oh):
                mismatched.append(((w, h), (ow, oh), got))
    assert not mismatched, mismatched[:10]
    # The official's exact search never runs: it calls check_valid with an argument too many.
    with pytest.raises(TypeError):
        OFF.utils.calculate_new_size(1280, 720, 1280 * 720, 16)
    # A character image of the output's size makes an official output of that size, except where
    # the float square root lands under a multiple of 16: 480x832 is 464x832 officially (the
    # backend then fits the official frames into its output; see conditioning.py).
    kept = {out: official_size(*out, *out) for out in OUTPUTS}
    assert {out: s for out, s in kept.items() if s != out} == {(480, 832): (464, 832)}
    # The black bar of the earlier canvas: a 16:9 clip at 832x480's area is 832x464.
    assert official_size(1920, 1080, 832, 480) == (832, 464)


@pytest.mark.parametrize("src", [(1920, 1080), (640, 480), (1080, 1920), (513, 287), (100, 700)])
def test_resize_by_area_and_the_character_canvas_are_the_officials_pixel_for_pixel(src):
    img = textured(*src, 1, seed=src[0])[0]
    for ow, oh in OUTPUTS[:4]:
        want = OFF.utils.resize_by_area(img, ow * oh, divisor=16)
        assert differing(resize_by_area(img, ow, oh), want) == 0
        assert differing(character_canvas(img, ow, oh), want) == 0


@pytest.mark.parametrize(
    "interp", [cv2.INTER_LINEAR, cv2.INTER_AREA, cv2.INTER_NEAREST], ids=["linear", "area", "nearest"]
)
def test_padding_resize_is_the_officials(interp):
    rng = np.random.default_rng(interp)
    for _ in range(12):
        w, h = (int(v) for v in rng.integers(20, 900, 2))
        ow, oh = (int(v) for v in rng.integers(16, 900, 2))
        for channels in (3, 1):
            img = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
            want = OFF.utils.padding_resize(img, oh, ow, interpolation=interp)
            got = padding_resize(img, ow, oh, interp)
            assert differing(got, want) == 0, ((w, h), (ow, oh), channels)
            if channels == 1:  # masks travel as 2-D arrays
                assert differing(padding_resize(img[:, :, 0], ow, oh, interp), want[:, :, 0]) == 0


def test_the_reference_image_is_fitted_as_the_official_generation_fits_it():
    """wan/animate.py reads src_ref.png (the character image as given) and fits it into the pose
    frames' size with its own padding_resize; the backend's fit_character must give those pixels."""
    from PIL import Image

    official_fit = official_function(
        "animate.py", "padding_resize", cls="WanAnimate", namespace={"cv2": cv2, "np": np}
    )
    for (w, h), (ow, oh) in [
        ((1920, 1080), (1280, 720)),
        ((600, 900), (832, 480)),
        ((333, 517), (720, 1280)),
    ]:
        img = textured(w, h, 1, seed=w)[0]
        want = official_fit(None, img, height=oh, width=ow)
        got = np.asarray(fit_character(Image.fromarray(img), ow, oh))
        assert differing(got, want) == 0, ((w, h), (ow, oh))


# --- frame indices ---


@pytest.mark.parametrize("fps", [24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60.0], ids=lambda f: f"{f:.2f}")
def test_model_frames_come_from_the_officials_clip_frames(fps):
    """get_frame_indices with the pipeline's count (frame_num / video_fps * 30, truncated) against
    model_frame_sources, for clips of 1 to 1000 frames. One intended difference: a one-frame clip
    at 50 or 60 fps is 0.6 or 0.5 model frames, which the official truncates to none (a clip
    that makes no video); the backend keeps its one frame."""
    mismatches = []
    for n in range(1, 1001):
        want = OFF.utils.get_frame_indices(n, fps, int(n / fps * 30), 30)
        got = model_frame_sources(n, fps, 30.0)
        if got != want:
            mismatches.append((n, want, got))
    if fps >= 50:
        assert mismatches == [(1, [], [0])]
    else:
        assert mismatches == []


# --- face boxes and crops ---


def test_the_face_box_rule_is_the_later_get_face_bboxes():
    """utils.py defines get_face_bboxes twice; the later one (69 face points normalised by the
    frame, the first dropped, no random augmentation) is what the pipeline calls."""
    params = list(inspect.signature(OFF.utils.get_face_bboxes).parameters)
    assert params == ["kp2ds", "scale", "image_shape"]


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (1080, 1920), (640, 480), (1104, 816)])
def test_face_boxes_and_crops_are_the_officials(size):
    w, h = size
    frame = textured(w, h, 1, seed=w + h)[0]
    rng = np.random.default_rng(w * h)
    levels, boxes = [], 0
    for case in range(40):
        k = performer(rng, w, h, t=case, jitter=0.03, whole_pixels=case % 3 == 0)
        if case % 5 == 4:  # a face partly outside the frame
            k[23:91, 0] -= 0.52 * w
        if case % 7 == 6:  # a big face, close to the camera
            c = k[23:91, :2].mean(axis=0)
            k[23:91, :2] = c + (k[23:91, :2] - c) * 6
        x1, x2, y1, y2 = OFF.utils.get_face_bboxes(
            official_meta(k, w, h)["keypoints_face"][:, :2], 1.3, (h, w)
        )
        got = face_box(k, h, w)
        assert got == (x1, y1, x2, y2), case
        boxes += 1
        want_crop = cv2.resize(frame[y1:y2, x1:x2], (512, 512))
        levels.append(np.abs(crop_face(frame, got, 512).astype(float) - want_crop).mean())
    assert boxes == 40
    assert max(levels) <= 0.5, levels
    assert max(levels) == 0.0


# --- replace masks ---


def _blobs(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        axes = (int(rng.integers(1, w // 4)), int(rng.integers(1, h // 4)))
        cv2.ellipse(m, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    if rng.uniform() < 0.3:
        m[int(rng.integers(0, h)), int(rng.integers(0, w))] = 1  # a stray pixel far off
    return m


@pytest.mark.parametrize(
    "iterations, k, w_len, h_len", [(3, 7, 1, 1), (1, 5, 1, 1), (2, 7, 3, 2), (3, 3, 10, 20)]
)
def test_the_mask_shaping_is_get_mask_body_img_then_get_aug_mask(iterations, k, w_len, h_len):
    """The pipeline's defaults are iterations 3, k 7 and a 1 x 1 grid; other settings too."""
    rng = np.random.default_rng(iterations * 100 + k + w_len)
    for w, h in [(1280, 720), (832, 464), (720, 1280), (1104, 816)]:
        for _ in range(3):
            mask = _blobs(rng, w, h)
            frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            _, dilated = OFF.utils.get_mask_body_img(frame, mask.copy(), iterations=iterations, k=k)
            want = OFF.utils.get_aug_mask(dilated, w_len=w_len, h_len=h_len)
            got = official_shape(mask, iterations, k, w_len, h_len)
            assert differing(got // 255, want) == 0, (w, h)
    # Without dilation the pipeline uses the mask as it is.
    assert np.array_equal(official_shape(mask, iterations=0) // 255, mask)


# --- the skeleton ---


@pytest.mark.parametrize(
    "size", [(1280, 720), (832, 480), (1080, 1920), (640, 480), (1920, 1080), (3840, 2160)]
)
def test_skeleton_drawing_is_draw_aapose_by_meta_new_pixel_for_pixel(size):
    """Random whole-body keypoint sets (confidences straddling 0.5, hands and face, some points off
    the frame, whole and 1/1000 pixels) found on a frame of ``size`` and drawn at that size: the
    official's metas (load_pose_metas_from_kp2ds_seq, from_humanapi_meta) drawn by
    draw_aapose_by_meta_new, against draw_pose_frame. Then fitted into outputs of other sizes
    (padding_resize) as the animate branch fits them."""
    w, h = size
    rng = np.random.default_rng(w + 7 * h)
    count = 4 if w * h > 4e6 else 12
    inked = differ = 0
    for case in range(count):
        k = random_wholebody(rng, w, h, whole_pixels=case % 2 == 0)
        if case % 3 == 2:
            k = performer(rng, w, h, t=case, whole_pixels=case % 2 == 0)
        want = official_drawing(k, w, h)
        got = draw_pose_frame(k, h, w)
        inked += int(want.any(axis=2).sum())
        differ += differing(got, want)
        if case < 2:
            for ow, oh in OUTPUTS[:2]:
                fitted = OFF.utils.padding_resize(want, oh, ow)
                assert differing(draw_on_canvas(canvas_points(k, w, h), (w, h), ow, oh), fitted) == 0
    assert inked > 0
    assert differ == 0, f"{differ} of {inked} inked pixels differ"
