"""The Wan-Animate pose representation and its drawing, and the official preprocessing's sizes.

Keypoints travel as COCO-WholeBody arrays of shape (133, 3): x, y in pixels and a
confidence in [0, 1]. The DiT was trained on skeletons drawn in one exact style (the official
``draw_aapose_by_meta_new``); the drawing below restates that style, the points it draws are
computed in the official order of float operations (normalised by the canvas, averaged, scaled
back), and tests/test_official_*.py compare every function here with the official Wan2.2 code
(package wan22) on the same inputs: pixel for pixel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..protocol import (  # noqa: F401 - re-exported for the drawing's readers
    BODY_BONES,
    BODY_NAMES,
    BODY_SRC_A,
    BODY_SRC_B,
    FACE_SLICE,
    HAND_EDGES,
    HAND_NAMES,
    LEFT_HAND_SLICE,
    NUM_WHOLEBODY,
    PALETTE,
    RIGHT_HAND_SLICE,
)

BONE_BRIGHTNESS = 0.6
HAND_JOINT_COLOR = (0, 0, 255)
CONFIDENCE_THRESHOLD = 0.5


def body_halfwidth(height: int, width: int) -> int:
    return max(int(min(height, width) / 200) - 1, 1)


def wholebody_to_body20(kps: np.ndarray) -> np.ndarray:
    """(133, 3) -> (20, 3); confidences are averaged like the positions."""
    kps = np.asarray(kps, dtype=np.float64)
    return (kps[list(BODY_SRC_A)] + kps[list(BODY_SRC_B)]) / 2.0


def _hsv_edge_color(index: int, count: int) -> tuple[float, float, float]:
    r, g, b = _hsv_to_rgb(index / float(count), 1.0, 1.0)
    return (r * 255.0, g * 255.0, b * 255.0)


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))[i]


def draw_pose_frame(
    kps: np.ndarray,
    height: int,
    width: int,
    threshold: float = CONFIDENCE_THRESHOLD,
    draw_hands: bool = True,
) -> np.ndarray:
    """Draw one (133, 3) keypoint set (pixels of a ``width`` x ``height`` image) as an RGB uint8
    skeleton frame of that size on black."""
    pts = canvas_points(kps, width, height)
    return draw_pose_points(pts[:20], pts[20:62] if draw_hands else None, height, width, threshold)


def draw_pose_points(
    body: np.ndarray,
    hands: np.ndarray | None,
    height: int,
    width: int,
    threshold: float = CONFIDENCE_THRESHOLD,
    right_hand_first: bool = False,
) -> np.ndarray:
    """Draw the 20 body points and (optionally) 42 hand points (left 21, then right
    21), each (x, y, confidence) in output pixels. The hands are drawn left then right, or
    right then left (``right_hand_first``: the official retargeted frames' order), which shows
    where they overlap."""
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    body = np.asarray(body, dtype=np.float64)
    hw = body_halfwidth(height, width)

    for (a, b), color in zip(BODY_BONES, PALETTE, strict=False):
        p, q = body[a - 1], body[b - 1]
        if p[2] < threshold or q[2] < threshold:
            continue
        cx, cy = (p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0
        # The length as the official computes it (its square root is a power, not hypot: the
        # last bit can differ, and int() below can tell).
        length = ((p[1] - q[1]) ** 2 + (p[0] - q[0]) ** 2) ** 0.5
        angle = math.degrees(math.atan2(p[1] - q[1], p[0] - q[0]))
        poly = cv2.ellipse2Poly((int(cx), int(cy)), (int(length / 2), hw), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, [int(float(c) * BONE_BRIGHTNESS) for c in color])

    for point, color in zip(body, PALETTE, strict=True):
        if point[2] < threshold:
            continue
        cv2.circle(canvas, (int(point[0]), int(point[1])), hw, color, thickness=-1)

    if hands is not None:
        hands = np.asarray(hands, dtype=np.float64)
        hand_w = max(hw // 2, 1)
        order = (hands[21:42], hands[:21]) if right_hand_first else (hands[:21], hands[21:42])
        for hand in order:
            _draw_hand(canvas, hand, hand_w, threshold)
    return canvas


def _draw_hand(canvas: np.ndarray, hand: np.ndarray, thickness: int, threshold: float) -> None:
    eps = 0.01
    for i, (a, b) in enumerate(HAND_EDGES):
        p, q = hand[a], hand[b]
        if p[2] < threshold or q[2] < threshold:
            continue
        x1, y1, x2, y2 = int(p[0]), int(p[1]), int(q[0]), int(q[1])
        # Points at the origin are "missing" in the official format.
        if min(x1, y1, x2, y2) > eps:
            cv2.line(canvas, (x1, y1), (x2, y2), _hsv_edge_color(i, len(HAND_EDGES)), thickness=thickness)
    for p in hand:
        if p[2] < threshold:
            continue
        x, y = int(p[0]), int(p[1])
        if x > eps and y > eps:
            cv2.circle(canvas, (x, y), thickness, HAND_JOINT_COLOR, thickness=-1)


def face_box(
    kps: np.ndarray, height: int, width: int, scale: float = 1.3
) -> tuple[int, int, int, int] | None:
    """Official face-crop rule on the 68 face landmarks: area x scale at the same aspect,
    the extra height split 3:1 towards the forehead. Returns (x0, y0, x1, y1), or None when
    the landmarks are missing or span too few pixels to place a crop by. Landmarks with
    confidence 0 (not given: the official estimator gives every point) are left out."""
    face = np.asarray(kps, dtype=np.float64)[FACE_SLICE]
    face = face[face[:, 2] > 0]
    if len(face) < 3:
        return None
    # In the frame's pixels as the official has them: normalised by the frame, then scaled back.
    xy = face[:, :2] / (width, height) * (width, height)
    x0, y0 = xy[:, 0].min(), xy[:, 1].min()
    x1, y1 = xy[:, 0].max(), xy[:, 1].max()
    if max(x1 - x0, y1 - y0) < MIN_LANDMARK_SPAN:
        return None
    return _official_crop(x0, y0, x1, y1, height, width, scale)


def crop_face(frame: np.ndarray, box: tuple[int, int, int, int], size: int = 512) -> np.ndarray:
    x0, y0, x1, y1 = box
    # The model saw faces stretched to a square, aspect not kept, resized linearly (cv2's default,
    # as the official preprocessing does).
    return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)


# Face landmarks spanning less than this many pixels are too few to place a crop by.
MIN_LANDMARK_SPAN = 4.0
_NOSE, _EYES, _EARS, _SHOULDERS = 0, (1, 2), (3, 4), (5, 6)


def _official_crop(
    x0: float, y0: float, x1: float, y1: float, height: int, width: int, scale: float
) -> tuple[int, int, int, int] | None:
    """The official rule from a face's extent: area x scale at the same aspect, the extra
    height split 3:1 towards the forehead, clipped to the frame."""
    w, h = x1 - x0, y1 - y0
    if w <= 1 or h <= 1 or not np.isfinite([w, h]).all():
        return None
    area = w * h * scale
    new_w, new_h = math.sqrt(area * (w / h)), math.sqrt(area * (h / w))
    dw, dh = (new_w - w) / 2.0, (new_h - h) / 4.0
    bx0, bx1 = max(x0 - dw, 0.0), min(x1 + dw, float(width))
    by0, by1 = max(y0 - 3 * dh, 0.0), min(y1 + dh, float(height))
    if bx1 - bx0 < 2 or by1 - by0 < 2:
        return None
    return int(bx0), int(by0), int(bx1), int(by1)


def head_box(
    kps: np.ndarray, height: int, width: int, scale: float = 1.3
) -> tuple[int, int, int, int] | None:
    """A face crop when the face landmarks are missing or too small to trust (a far, small or
    turned face): the face's extent estimated from the whole-body head points, then the
    official rule. The width is the ears' distance, else 2.2 eye distances, else half the
    shoulders' width; the eyes sit a quarter of the way down the face (brows to chin).
    None when the body gives nothing to place a head by."""
    k = np.asarray(kps, dtype=np.float64)

    def seen(*idx: int) -> bool:
        return bool((k[list(idx), 2] > 0).all())

    def dist(a: int, b: int) -> float:
        return float(np.hypot(*(k[a, :2] - k[b, :2])))

    if seen(*_EARS):
        w = dist(*_EARS)
    elif seen(*_EYES):
        w = 2.2 * dist(*_EYES)
    elif seen(*_SHOULDERS):
        w = 0.5 * dist(*_SHOULDERS)
    else:
        return None
    w = max(w, 2.0)
    h = 1.1 * w
    head = [i for i in (_NOSE, *_EYES, *_EARS) if seen(i)]
    if head:
        cx = float(k[head, 0].mean())
        eye_y = float(k[list(_EYES), 1].mean()) if seen(*_EYES) else float(k[head, 1].mean())
    else:
        # Only the shoulders: the head sits above their middle.
        cx = float(k[list(_SHOULDERS), 0].mean())
        eye_y = float(k[list(_SHOULDERS), 1].mean()) - 1.1 * h
    top = eye_y - 0.25 * h
    return _official_crop(cx - w / 2, top, cx + w / 2, top + h, height, width, scale)


# The official preprocessing's size for an image at an output's area (its resize_by_area with
# divisor 16, as process_pipepline.py calls it): the image's aspect at that area, each side
# floored to a multiple of 16. Its exact search (calculate_new_size) always raises (it calls
# check_valid with one argument too many), so the fallback below is what runs. In animate mode
# that is the size of the character image, and so of the official output; in replace mode the
# clip's frames are resized to it before anything is detected or drawn.
SIZE_DIVISOR = 16


def official_size(src_w: int, src_h: int, out_w: int, out_h: int) -> tuple[int, int]:
    """(width, height) the official preprocessing resizes a ``src_w`` x ``src_h`` image to for an
    ``out_w`` x ``out_h`` output's area."""
    area = out_w * out_h
    h = math.sqrt(area / (src_w / src_h))
    w = area / h
    return (
        max(SIZE_DIVISOR, int(w // SIZE_DIVISOR) * SIZE_DIVISOR),
        max(SIZE_DIVISOR, int(h // SIZE_DIVISOR) * SIZE_DIVISOR),
    )


def resize_by_area(img: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """``img`` resized as the official preprocessing resizes a frame or the character image for an
    ``out_w`` x ``out_h`` output: padded into ``official_size``, by area when it shrinks."""
    h, w = img.shape[:2]
    size = official_size(w, h, out_w, out_h)
    return padding_resize(img, *size, cv2.INTER_AREA if size[0] * size[1] < w * h else cv2.INTER_LINEAR)


def padding_fit(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Where a padded fit puts a ``src_w`` x ``src_h`` image in ``width`` x ``height``:
    (resized width, resized height, left, top), with the official integer truncations."""
    if src_h / src_w > height / width:
        new_w = int(height / src_h * src_w)
        return new_w, height, int((width - new_w) / 2), 0
    new_h = int(width / src_w * src_h)
    return width, new_h, 0, int((height - new_h) / 2)


def padding_resize(
    img: np.ndarray, width: int, height: int, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """``img`` fitted into ``width`` x ``height`` at its aspect, centred on black (the official
    padding_resize; the same size gives ``img`` back unchanged)."""
    new_w, new_h, left, top = padding_fit(img.shape[1], img.shape[0], width, height)
    out = np.zeros((height, width, *img.shape[2:]), dtype=img.dtype)
    resized = cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    out[top : top + new_h, left : left + new_w] = resized.reshape(new_h, new_w, *img.shape[2:])
    return out


def canvas_points(kps: np.ndarray, width: int, height: int) -> np.ndarray:
    """(62, 3): the points a pose frame draws for a (133, 3) keypoint set in the pixels of a
    ``width`` x ``height`` canvas, the 20 body points then the left and right hands, computed as
    the official computes them (its keypoints are normalised by the image they were found on,
    the body's averaged, then scaled back by the canvas: the same numbers up to the last bit,
    which the drawing's int() can tell)."""
    n = np.array(kps, dtype=np.float64, copy=True)
    n[:, 0] /= width
    n[:, 1] /= height
    out = np.concatenate(
        [(n[list(BODY_SRC_A)] + n[list(BODY_SRC_B)]) / 2, n[LEFT_HAND_SLICE], n[RIGHT_HAND_SLICE]]
    )
    out[:, :2] = out[:, :2] * (width, height)
    return out


def fit_points(
    pts: np.ndarray,
    src_w: int,
    src_h: int,
    width: int,
    height: int,
    inverse: bool = False,
    every: bool = False,
) -> np.ndarray:
    """Points of a ``src_w`` x ``src_h`` image where a padded fit into ``width`` x ``height`` puts
    them (``inverse``: back). Unplaced points (confidence 0) stay where they are, unless
    ``every``."""
    new_w, new_h, left, top = padding_fit(src_w, src_h, width, height)
    out = np.array(pts, dtype=np.float64, copy=True)
    placed = np.ones(len(out), bool) if every else out[:, 2] > 0
    if inverse:
        out[placed, 0] = (out[placed, 0] - left) * src_w / new_w
        out[placed, 1] = (out[placed, 1] - top) * src_h / new_h
    else:
        out[placed, 0] = out[placed, 0] * new_w / src_w + left
        out[placed, 1] = out[placed, 1] * new_h / src_h + top
    return out


def draw_on_canvas(
    pts: np.ndarray, canvas: tuple[int, int], out_w: int, out_h: int, right_hand_first: bool = False
) -> np.ndarray:
    """(62, 3) points drawn on a ``canvas`` (width, height), whose size sets the stroke width,
    then fitted into the output with padding as the official preprocessing resizes its frames."""
    drawn = draw_pose_points(pts[:20], pts[20:62], canvas[1], canvas[0], right_hand_first=right_hand_first)
    return padding_resize(drawn, out_w, out_h)
