"""The Wan-Animate pose representation and its drawing.

Keypoints travel as COCO-WholeBody arrays of shape (133, 3): x, y in pixels and a
confidence in [0, 1]. The DiT was trained on skeletons drawn in one exact style
(the official ``draw_aapose_new``); every constant below is that style, restated
from shared/reference/wan-animate.md so that a drawn frame matches pixel for pixel.
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
    """Draw one (133, 3) keypoint set as an RGB uint8 skeleton frame on black."""
    kps = np.asarray(kps, dtype=np.float64)
    hands = np.concatenate([kps[LEFT_HAND_SLICE], kps[RIGHT_HAND_SLICE]]) if draw_hands else None
    return draw_pose_points(wholebody_to_body20(kps), hands, height, width, threshold)


def draw_pose_points(
    body: np.ndarray,
    hands: np.ndarray | None,
    height: int,
    width: int,
    threshold: float = CONFIDENCE_THRESHOLD,
) -> np.ndarray:
    """Draw the 20 body points and (optionally) 42 hand points (left 21, then right
    21), each (x, y, confidence) in output pixels."""
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    body = np.asarray(body, dtype=np.float64)
    hw = body_halfwidth(height, width)

    for (a, b), color in zip(BODY_BONES, PALETTE, strict=False):
        p, q = body[a - 1], body[b - 1]
        if p[2] < threshold or q[2] < threshold:
            continue
        cx, cy = (p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0
        length = math.hypot(p[0] - q[0], p[1] - q[1])
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
        _draw_hand(canvas, hands[:21], hand_w, threshold)
        _draw_hand(canvas, hands[21:42], hand_w, threshold)
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
    the landmarks are missing or span too few pixels to place a crop by."""
    face = np.asarray(kps, dtype=np.float64)[FACE_SLICE]
    face = face[face[:, 2] > 0]
    if len(face) < 3:
        return None
    x0, y0 = face[:, 0].min(), face[:, 1].min()
    x1, y1 = face[:, 0].max(), face[:, 1].max()
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
    new_w, new_h = math.sqrt(area * w / h), math.sqrt(area * h / w)
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


# The official preprocessing draws the skeleton on the clip frame resized to the output's area
# (at the clip's aspect, sides floored to 16) and then fits that drawing into the output with
# padding and linear interpolation. Stroke widths come from the drawing's size, so drawing at
# the output size instead gives other pixels whenever the sizes differ; the model was trained
# on the official frames.
SIZE_DIVISOR = 16


def official_canvas(src_w: int, src_h: int, out_w: int, out_h: int) -> tuple[int, int]:
    """(width, height) the official preprocessing draws a ``src_w`` x ``src_h`` clip's skeleton at."""
    area = out_w * out_h
    h = math.sqrt(area / (src_w / src_h))
    w = area / h
    return (
        max(SIZE_DIVISOR, int(w // SIZE_DIVISOR) * SIZE_DIVISOR),
        max(SIZE_DIVISOR, int(h // SIZE_DIVISOR) * SIZE_DIVISOR),
    )


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
    """``img`` fitted into ``width`` x ``height`` at its aspect, centred on black."""
    new_w, new_h, left, top = padding_fit(img.shape[1], img.shape[0], width, height)
    out = np.zeros((height, width, *img.shape[2:]), dtype=img.dtype)
    out[top : top + new_h, left : left + new_w] = cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    return out


def drawn_points(kps: np.ndarray) -> np.ndarray:
    """(62, 3): the 20 body points, then the left and right hands: what a pose frame draws."""
    kps = np.asarray(kps, dtype=np.float64)
    return np.concatenate([wholebody_to_body20(kps), kps[LEFT_HAND_SLICE], kps[RIGHT_HAND_SLICE]])


def fit_points(
    pts: np.ndarray, src_w: int, src_h: int, width: int, height: int, inverse: bool = False
) -> np.ndarray:
    """Points of a ``src_w`` x ``src_h`` image where a padded fit into ``width`` x ``height`` puts
    them (``inverse``: back). Unplaced points (confidence 0) stay where they are."""
    new_w, new_h, left, top = padding_fit(src_w, src_h, width, height)
    out = np.array(pts, dtype=np.float64, copy=True)
    placed = out[:, 2] > 0
    if inverse:
        out[placed, 0] = (out[placed, 0] - left) * src_w / new_w
        out[placed, 1] = (out[placed, 1] - top) * src_h / new_h
    else:
        out[placed, 0] = out[placed, 0] * new_w / src_w + left
        out[placed, 1] = out[placed, 1] * new_h / src_h + top
    return out


def official_points(
    kps: np.ndarray, src_w: int, src_h: int, out_w: int, out_h: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """A (133, 3) keypoint set in clip pixels as the official preprocessing places it for an
    ``out_w`` x ``out_h`` output: the (62, 3) drawn points on the official canvas, and the canvas."""
    canvas = official_canvas(src_w, src_h, out_w, out_h)
    return fit_points(drawn_points(kps), src_w, src_h, *canvas), canvas


def draw_on_canvas(pts: np.ndarray, canvas: tuple[int, int], out_w: int, out_h: int) -> np.ndarray:
    """(62, 3) points drawn on a ``canvas`` (width, height), whose size sets the stroke width,
    then fitted into the output with padding as the official preprocessing resizes its frames."""
    return padding_resize(draw_pose_points(pts[:20], pts[20:62], canvas[1], canvas[0]), out_w, out_h)


def draw_pose_official(kps: np.ndarray, src_w: int, src_h: int, out_w: int, out_h: int) -> np.ndarray:
    """A (133, 3) keypoint set in clip pixels drawn as the official preprocessing draws it for an
    ``out_w`` x ``out_h`` output: on the official canvas, then fitted into the output."""
    return draw_on_canvas(*official_points(kps, src_w, src_h, out_w, out_h), out_w, out_h)
