"""Reference clip -> per-model-frame keypoints, pose frames and face crops.

Two streaming passes over the clip keep memory flat: the first estimates keypoints
(kept: 133x3 floats a frame), the second crops faces once every gap in the face
track has been bridged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .clip_reading import ClipError, ClipInfo, iter_frames_rgb, model_frame_sources
from .frame_folder import FrameFolder
from .keypoint_filter import clean_tracks
from .performer_pick import NoPersonError
from .pose_format import (
    CONFIDENCE_THRESHOLD,
    crop_face,
    draw_on_canvas,
    draw_pose_points,
    face_box,
    fit_points,
    head_box,
    official_canvas,
    official_points,
    wholebody_to_body20,
)
from .retarget import CharacterPose, measured_frame, plan_retarget

Progress = Callable[[int, int, str], None]
KEYPOINT_DECIMALS = 3  # what keypoints.json keeps: 1/1000 pixel


# Around the followed person's box, the share of its size the replace mask may still reach:
# arms and feet stretch past a detector's box.
PERFORMER_MARGIN = 0.15


@dataclass
class Letterbox:
    """Maps clip pixels into the output frame: fit inside, keep aspect, centre."""

    scale: float
    dx: float
    dy: float

    @classmethod
    def fit(cls, src_w: int, src_h: int, dst_w: int, dst_h: int) -> Letterbox:
        s = min(dst_w / src_w, dst_h / src_h)
        return cls(s, (dst_w - src_w * s) / 2.0, (dst_h - src_h * s) / 2.0)

    def apply(self, kps: np.ndarray) -> np.ndarray:
        out = np.array(kps, dtype=np.float64, copy=True)
        out[:, 0] = out[:, 0] * self.scale + self.dx
        out[:, 1] = out[:, 1] * self.scale + self.dy
        return out


@dataclass
class Conditioning:
    sources: list[int]  # clip frame index behind each model frame
    keypoints: list[np.ndarray]  # (133, 3) in clip pixels, per model frame
    face_boxes: list[tuple[int, int, int, int]]
    face_filled: list[bool]  # True where the box was bridged, not detected
    # Lists, or FrameFolders on disk for clips (see build_conditioning's frames_dir).
    pose_frames: Sequence[np.ndarray]  # RGB uint8 at output size
    face_frames: Sequence[np.ndarray]  # RGB uint8 face_size x face_size
    background_frames: Sequence[np.ndarray] = field(
        default_factory=list
    )  # replace mode: RGB, performer blacked out
    mask_frames: Sequence[np.ndarray] = field(default_factory=list)  # replace mode: uint8, 255 = regenerate
    retarget_ratios: dict[int, float] | None = None  # per body bone, when the pose was retargeted
    # The followed person's box per frame (x1, y1, x2, y2, score; score 0: predicted through a
    # gap; None: not there), from estimators that track one person among several.
    person_boxes: list = field(default_factory=list)
    # Where each face crop came from: "landmarks", "head_points" (landmarks missing or tiny) or
    # "bridged" (between frames that had one).
    face_from: list[str] = field(default_factory=list)
    # Replace mode: what made the masks, "sam2" or the embedded mediapipe fallback's name.
    mask_source: str | None = None
    # Per model frame, the (62, 3) points the pose frame draws, in output pixels, and the canvas
    # (width, height) they were drawn on before the fit into the output.
    drawn_points: list = field(default_factory=list)
    pose_canvas: tuple[int, int] | None = None
    pose_size: tuple[int, int] | None = None


def estimate_keypoints(
    info: ClipInfo,
    sources: list[int],
    estimator,
    progress: Progress | None = None,
    person_boxes: list | None = None,
) -> list[np.ndarray]:
    """``person_boxes``: filled with the followed person's box per frame, for estimators that
    track one (``estimator.boxes``)."""
    cache: dict[int, tuple[np.ndarray, list | None]] = {}
    out = []
    tracked = hasattr(estimator, "boxes")
    for n, (idx, frame) in enumerate(iter_frames_rgb(info, sources)):
        if idx not in cache:
            cache.clear()  # sources ascend: only the latest frame can repeat
            kps = estimator.estimate(frame)
            box = estimator.boxes[-1] if tracked else None
            cache[idx] = (kps, None if box is None else [round(float(v), 2) for v in box])
        out.append(cache[idx][0])
        if person_boxes is not None and tracked:
            person_boxes.append(cache[idx][1])
        if progress:
            progress(n + 1, len(sources), "pose")
    if len(out) != len(sources):
        raise ClipError(
            f"{info.path.name} ended early while reading frame {len(out)}; the file may be damaged."
        )
    return out


def face_boxes(
    kps: list[np.ndarray], height: int, width: int
) -> tuple[list[tuple[int, int, int, int]], list[str]]:
    """A face crop for every frame, and where each came from: the face landmarks (the official
    rule), the head points of the whole body where the landmarks are missing or tiny (far,
    small or turned faces), or bridged between those (linear, held at the ends). A job never
    fails for a face while the performer's body is found."""
    boxes: list[tuple[int, int, int, int] | None] = []
    source: list[str] = []
    for k in kps:
        box = face_box(k, height, width)
        src = "landmarks"
        if box is None:
            box, src = head_box(k, height, width), "head_points"
        boxes.append(box)
        source.append(src if box is not None else "bridged")
    good = [i for i, b in enumerate(boxes) if b is not None]
    if not good:
        raise NoPersonError(
            "Neither a face nor the performer's head or shoulders were found in any frame of the "
            "reference clip. Use a clip that shows the performer's head for at least part of the shot."
        )
    arr = np.array([boxes[i] for i in good], dtype=np.float64)
    idx = np.arange(len(boxes))
    filled = np.stack([np.interp(idx, good, arr[:, k]) for k in range(4)], axis=1)
    return [tuple(int(round(v)) for v in row) for row in filled], source


def build_conditioning(
    info: ClipInfo,
    estimator,
    out_w: int,
    out_h: int,
    face_size: int,
    progress: Progress | None = None,
    model_fps: float = 30.0,
    saved: dict | None = None,
    replace: bool = False,
    frames_dir: Path | None = None,
    model_dir: Path | None = None,
    character: CharacterPose | None = None,
) -> Conditioning:
    """``saved``: a keypoints.json of an earlier job on this clip; its keypoints are
    reused (no detection) and its ``pose_points`` (edited guides), if any, drawn.
    ``frames_dir``: where the pose, face, background and mask frames go as they are made
    (memory stays flat however long the clip); without it they are kept in memory.
    ``character``: the character's pose on its official canvas; when given and it shows the
    shoulders, the pose is retargeted to its proportions by the official rule (retarget.py)."""
    sources = info.model_sources(model_fps)
    if saved is not None:
        if len(saved["frames"]) != len(sources):
            raise ClipError(
                f"The saved keypoints cover {len(saved['frames'])} frames but {info.path.name} needs "
                f"{len(sources)}: they belong to another clip. Generate from the clip again."
            )
        kps = [np.asarray(f["keypoints"], dtype=np.float64) for f in saved["frames"]]
        person_boxes = (
            [f["person_box"] for f in saved["frames"]] if "person_box" in saved["frames"][0] else []
        )
    else:
        person_boxes = []
        # Saved keypoints were cleaned when they were detected; fresh ones are cleaned here, and
        # rounded as keypoints.json stores them, so a job that reuses them draws the same pose.
        cleaned = clean_tracks(
            estimate_keypoints(info, sources, estimator, progress, person_boxes),
            model_fps,
            info.width,
            info.height,
        )
        kps = [np.round(k, KEYPOINT_DECIMALS) for k in cleaned]

    body_found = [bool((wholebody_to_body20(k)[:, 2] >= CONFIDENCE_THRESHOLD).sum() >= 3) for k in kps]
    if not any(body_found):
        raise NoPersonError(
            f"No person was found in the reference clip {info.path.name}. Use a clip that shows the "
            "performer's body clearly (head and shoulders at least).",
            keypoints=kps,
        )
    boxes, face_from = face_boxes(kps, info.height, info.width)
    bridged = [f == "bridged" for f in face_from]

    box = Letterbox.fit(info.width, info.height, out_w, out_h)

    def sink(name: str):
        return FrameFolder(Path(frames_dir) / name, name) if frames_dir is not None else []

    pose_frames = sink("pose")
    ratios = None
    # Every skeleton is drawn on a canvas (the clip's official one, or the character's when
    # retargeted) and fitted into the output; the points as drawn, in output pixels, go into
    # keypoints.json with the canvas, so the guides show what the model was given and a
    # regenerate from edited guides draws untouched frames exactly as before.
    drawn: list[np.ndarray] = []
    if saved is not None and all("pose_points" in f for f in saved["frames"]):
        canvas = tuple(saved["pose_canvas"]) if "pose_canvas" in saved else None
        for f in saved["frames"]:
            pts = _saved_points(f["pose_points"], saved, out_w, out_h)
            pose_frames.append(_draw_output_points(pts, out_w, out_h, canvas))
            drawn.append(pts)
    else:
        first = measured_frame(kps)
        plan = None if character is None else plan_retarget(first, info.width, info.height, character)
        if plan is not None:
            ratios = plan.ratio_by_bone_end()
            canvas = plan.canvas
        else:
            canvas = official_canvas(info.width, info.height, out_w, out_h)
        for k in kps:
            on_canvas = (
                plan.apply(k)
                if plan is not None
                else official_points(k, info.width, info.height, out_w, out_h)[0]
            )
            pose_frames.append(draw_on_canvas(on_canvas, canvas, out_w, out_h))
            drawn.append(fit_points(on_canvas, *canvas, out_w, out_h))
    face_frames = sink("face")
    backgrounds, masks = (sink("background"), sink("mask")) if replace else ([], [])
    segmenter = _open_segmenter(info, sources, kps, model_dir, frames_dir, progress) if replace else None
    try:
        for n, (_idx, frame) in enumerate(iter_frames_rgb(info, sources)):
            face_frames.append(crop_face(frame, boxes[n], face_size))
            if segmenter is not None:
                performer = person_boxes[n] if person_boxes else None
                bg, mask = _replace_frames(frame, segmenter, box, out_w, out_h, performer, n)
                backgrounds.append(bg)
                masks.append(mask)
            if progress:
                progress(n + 1, len(sources), f"face and mask ({segmenter.name})" if segmenter else "face")
    finally:
        if segmenter is not None:
            segmenter.close()
    return Conditioning(
        sources,
        kps,
        boxes,
        bridged,
        pose_frames,
        face_frames,
        backgrounds,
        masks,
        ratios,
        person_boxes,
        face_from,
        segmenter.name if segmenter is not None else None,
        drawn_points=drawn,
        pose_canvas=canvas,
        pose_size=(out_w, out_h),
    )


def _open_segmenter(
    info: ClipInfo,
    sources: list[int],
    kps: list[np.ndarray],
    model_dir: Path | None,
    frames_dir: Path | None,
    progress: Progress | None,
):
    """SAM2 when its weights are in the model folder (prompted by the performer's keypoints, one
    pass over the clip before the masks are shaped), else the embedded mediapipe fallback."""
    from .segment_sam2 import Sam2Segmenter, sam2_folder

    folder = sam2_folder(model_dir)
    if folder is None:
        from .segment_mediapipe import PerformerSegmenter

        return PerformerSegmenter()
    segmenter = Sam2Segmenter(folder)
    try:
        segmenter.segment_clip(info, sources, kps, frames_dir, progress)
    except BaseException:
        segmenter.close()
        raise
    return segmenter


def _replace_frames(
    frame: np.ndarray,
    segmenter,
    box: Letterbox,
    out_w: int,
    out_h: int,
    performer: list | None = None,
    index: int = 0,
):
    """The clip frame fitted into the output like the pose, its performer region
    (dilated, coarsened: the segmenter's ``shape``) blacked out in the background and white in
    the mask. ``index``: the model frame, for segmenters that made the clip's masks beforehand.

    ``performer``: the followed person's box (clip pixels) where others are in view. The
    segmenter finds everyone; only the performer is to be replaced, so people outside their
    box (with a margin for limbs reaching out) stay in the background."""
    import cv2

    fitted = np.zeros((out_h, out_w, 3), np.uint8)
    h, w = frame.shape[:2]
    sw, sh = max(1, round(w * box.scale)), max(1, round(h * box.scale))
    x0, y0 = int(round(box.dx)), int(round(box.dy))
    fitted[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA)[
        : out_h - y0, : out_w - x0
    ]
    # Segmented at the clip's own size (the segmenter caps it): at a small output size the
    # performer would be too few pixels for the models to find.
    prob = np.zeros((out_h, out_w), np.float32)
    prob[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(
        segmenter.mask(frame, index), (sw, sh), interpolation=cv2.INTER_LINEAR
    )[: out_h - y0, : out_w - x0]
    if performer is not None:
        x1, y1, x2, y2 = (float(v) for v in performer[:4])
        mx, my = PERFORMER_MARGIN * (x2 - x1), PERFORMER_MARGIN * (y2 - y1)
        (fx1, fy1), (fx2, fy2) = box.apply(np.array([[x1 - mx, y1 - my], [x2 + mx, y2 + my]]))
        keep = np.zeros_like(prob)
        keep[max(0, int(fy1)) : max(0, int(np.ceil(fy2))), max(0, int(fx1)) : max(0, int(np.ceil(fx2)))] = 1
        prob = prob * keep
    mask = segmenter.shape(prob)
    background = fitted.copy()
    background[mask > 0] = 0
    return background, mask


def _saved_points(points: list, saved: dict, out_w: int, out_h: int) -> np.ndarray:
    """Edited guide points (or a Blender animation's), in the output's pixels: they are in the
    pixels of the frames they were made for."""
    pts = np.asarray(points, dtype=np.float64)
    pts[:, 0] *= out_w / saved.get("pose_points_width", out_w)
    pts[:, 1] *= out_h / saved.get("pose_points_height", out_h)
    return pts


def _draw_output_points(
    pts: np.ndarray, out_w: int, out_h: int, canvas: tuple[int, int] | None
) -> np.ndarray:
    """Points in output pixels drawn on ``canvas`` (the one the job first drew them on) and fitted
    back, so stroke widths and smoothing match; without one, at the output size."""
    if canvas is None:
        return draw_pose_points(pts[:20], pts[20:62], out_h, out_w)
    return draw_on_canvas(
        fit_points(pts, canvas[0], canvas[1], out_w, out_h, inverse=True), canvas, out_w, out_h
    )


def conditioning_from_points(
    saved: dict, out_w: int, out_h: int, face: np.ndarray, model_fps: float = 30.0
) -> Conditioning:
    """No clip: the pose comes from ``pose_points`` sampled at ``saved["fps"]`` (a
    Blender animation projected through the camera), the face is one frame held."""
    frames = saved["frames"]
    if not frames or not all("pose_points" in f for f in frames):
        raise ClipError("The pose points file has no frames with pose_points; nothing to drive the motion.")
    sources = model_frame_sources(len(frames), float(saved["fps"]), model_fps)
    pose = [
        _draw_output_points(_saved_points(frames[i]["pose_points"], saved, out_w, out_h), out_w, out_h, None)
        for i in sources
    ]
    return Conditioning(sources, [], [], [], pose, [face] * len(sources))
