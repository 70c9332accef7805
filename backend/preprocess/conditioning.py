"""Reference clip -> per-model-frame keypoints, pose frames and face crops (and in replace mode
backgrounds and masks), as the official Wan2.2 preprocessing makes them.

Two streaming passes over the clip keep memory flat: the first estimates keypoints
(kept: 133x3 floats a frame), the second crops faces once every gap in the face
track has been bridged. No frame at the clip's size is kept longer than it is being used.

What the official pipeline (process_pipepline.py) does, and the project with it:

- animate mode: the clip's frames are read at their own size; the keypoints, the face boxes
  (512 x 512 crops, resized linearly) and the skeleton drawing are all at the clip's size, and
  each drawing is fitted with padding into the output. Retargeted, the skeleton is drawn on the
  character image's official size (pose_format.resize_by_area) instead and fitted into the output.
- replace mode: each clip frame is first resized to the output's area at the clip's aspect
  (``resize_by_area``); the keypoints are placed on that frame (found at the clip's size, moved
  where the resize puts them), and the skeleton, the face crops, the performer's mask (shaped by
  mask_shape.official_shape) and the background are made at that size.

The official output is the size of its frames (animate: the character image at the output's
area; replace: the clip at the output's area; pose_format.official_size). The project's output
is the request's size; where the two agree (usually: a character image, in replace mode a clip,
of the output's aspect ratio; but not for every size, 480x832 is 464x832 officially) its frames
are the official frames, pixel for pixel. Where they do not,
each official frame is fitted into the output with padding (pose and background linearly, the
mask by nearest pixel, the background blacked out under the fitted mask); animate mode's
unretargeted skeleton is drawn at the clip's size and fitted into the output at once, as the
official fits it into its own. tests/test_official_pipeline.py checks exactly this.

The project's own steps before the official ones: the keypoints are cleaned over time
(keypoint_filter) and rounded to 1/1000 pixel, a face too small for its landmarks is cropped
from the head's points, and in replace mode the performer's mask comes from the segmenter at
the clip's size and is resized onto the official frame (linearly, then cut at 0.5).

Where the project departs from the official on purpose (none of these arise from the official
pose model's output, which gives every point): a point with confidence 0 is "not given" (face
boxes and retargeting leave it out); a one-frame clip at 50 or 60 fps keeps its frame (the
official makes none); a frame where every body point lies left of or above the picture is drawn
as it is (the official draws the previous frame's body there, and fails on a first frame); an
empty mask stays empty (the official's box step fails on it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .clip_reading import ClipError, ClipInfo, iter_frames_rgb, model_frame_sources
from .frame_folder import FrameFolder
from .keypoint_filter import MAX_GAP_FRAMES, clean_tracks
from .performer_pick import NoPersonError
from .pose_format import (
    CONFIDENCE_THRESHOLD,
    canvas_points,
    crop_face,
    draw_on_canvas,
    draw_pose_points,
    face_box,
    fit_points,
    head_box,
    official_size,
    padding_resize,
    resize_by_area,
    wholebody_to_body20,
)
from .retarget import CharacterPose, measured_frame, plan_retarget

Progress = Callable[[int, int, str], None]
KEYPOINT_DECIMALS = 3  # what keypoints.json keeps: 1/1000 pixel


# Around the followed person's box, the share of its size the replace mask may still reach:
# arms and feet stretch past a detector's box.
PERFORMER_MARGIN = 0.15
# A replace mask is kept this many model frames either side of a frame with the performer's body
# (the keypoint filter's bridge, 0.2 s): a detector's brief miss must not flash the performer back.
NEAR_FRAMES = MAX_GAP_FRAMES


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
    # The hands were drawn right then left (retargeted frames, as the official draws them).
    pose_right_hand_first: bool = False


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
    segmenter=None,
) -> Conditioning:
    """``saved``: a keypoints.json of an earlier job on this clip; its keypoints are
    reused (no detection) and its ``pose_points`` (edited guides), if any, drawn.
    ``frames_dir``: where the pose, face, background and mask frames go as they are made
    (memory stays flat however long the clip); without it they are kept in memory.
    ``character``: the character's pose on its official canvas; when given and it shows the
    shoulders, the pose is retargeted to its proportions by the official rule (retarget.py;
    animate mode only). ``segmenter``: replace mode's performer segmenter (``mask``, ``shape``,
    ``name``, ``close``; closed here), instead of the one the model folder gives."""
    sources = info.model_sources(model_fps)
    kps, person_boxes = _keypoints(info, sources, estimator, progress, model_fps, saved)
    body_found = _bodies_found(kps, info)
    # Replace mode works on the clip's frames resized to the official size; the keypoints are
    # placed where that resize puts them (every point: an official estimator would find them there).
    frame_size = (
        official_size(info.width, info.height, out_w, out_h) if replace else (info.width, info.height)
    )
    on_frame = (
        [fit_points(k, info.width, info.height, *frame_size, every=True) for k in kps] if replace else kps
    )
    crop_boxes, face_from = face_boxes(on_frame, frame_size[1], frame_size[0])
    # keypoints.json keeps the boxes in clip pixels, with the keypoints.
    boxes = (
        [_box_in_clip(b, info.width, info.height, frame_size) for b in crop_boxes] if replace else crop_boxes
    )

    def sink(name: str):
        return FrameFolder(Path(frames_dir) / name, name) if frames_dir is not None else []

    poses = _draw_poses(
        kps, on_frame, info, frame_size, out_w, out_h, sink("pose"), saved, None if replace else character
    )
    face_frames = sink("face")
    backgrounds, masks = (sink("background"), sink("mask")) if replace else ([], [])
    if replace and segmenter is None:
        segmenter = _open_segmenter(info, sources, kps, model_dir, frames_dir, progress)
    segmenter = segmenter if replace else None
    pass_over = _FramePass(info, sources, crop_boxes, face_size, out_w, out_h, progress)
    try:
        if segmenter is None:
            pass_over.faces(face_frames)
        else:
            pass_over.faces_and_masks(face_frames, backgrounds, masks, segmenter, person_boxes, body_found)
    finally:
        if segmenter is not None:
            segmenter.close()
    return Conditioning(
        sources,
        kps,
        boxes,
        [f == "bridged" for f in face_from],
        poses.frames,
        face_frames,
        backgrounds,
        masks,
        poses.ratios,
        person_boxes,
        face_from,
        segmenter.name if segmenter is not None else None,
        drawn_points=poses.drawn,
        pose_canvas=poses.canvas,
        pose_size=(out_w, out_h),
        pose_right_hand_first=poses.right_first,
    )


def _keypoints(
    info: ClipInfo,
    sources: list[int],
    estimator,
    progress: Progress | None,
    model_fps: float,
    saved: dict | None,
) -> tuple[list[np.ndarray], list]:
    """Per model frame, the (133, 3) keypoints in clip pixels and the followed person's box
    (empty where the estimator tracks nobody): a saved keypoints.json's, or found now."""
    if saved is not None:
        if len(saved["frames"]) != len(sources):
            raise ClipError(
                f"The saved keypoints cover {len(saved['frames'])} frames but {info.path.name} needs "
                f"{len(sources)}: they belong to another clip. Generate from the clip again."
            )
        kps = [np.asarray(f["keypoints"], dtype=np.float64) for f in saved["frames"]]
        boxes = [f["person_box"] for f in saved["frames"]] if "person_box" in saved["frames"][0] else []
        return kps, boxes
    boxes: list = []
    # Saved keypoints were cleaned when they were detected; fresh ones are cleaned here, and
    # rounded as keypoints.json stores them, so a job that reuses them draws the same pose.
    cleaned = clean_tracks(
        estimate_keypoints(info, sources, estimator, progress, boxes), model_fps, info.width, info.height
    )
    return [np.round(k, KEYPOINT_DECIMALS) for k in cleaned], boxes


def _bodies_found(kps: list[np.ndarray], info: ClipInfo) -> list[bool]:
    """Per model frame, whether the performer's body shows (three body points at least); a
    clip where it never does is refused with what to do."""
    found = [bool((wholebody_to_body20(k)[:, 2] >= CONFIDENCE_THRESHOLD).sum() >= 3) for k in kps]
    if not any(found):
        raise NoPersonError(
            f"No person was found in the reference clip {info.path.name}. Use a clip that shows the "
            "performer's body clearly (head and shoulders at least).",
            keypoints=kps,
        )
    return found


@dataclass
class _Poses:
    frames: Sequence[np.ndarray]
    drawn: list[np.ndarray]  # per frame, the (62, 3) points drawn, in output pixels
    canvas: tuple[int, int] | None
    ratios: dict[int, float] | None = None
    right_first: bool = False


def _draw_poses(
    kps: list[np.ndarray],
    on_frame: list[np.ndarray],
    info: ClipInfo,
    frame_size: tuple[int, int],
    out_w: int,
    out_h: int,
    frames,
    saved: dict | None,
    character: CharacterPose | None,
) -> _Poses:
    """Every skeleton is drawn on a canvas (the clip's size, the official frame's in replace
    mode, the character's when retargeted) and fitted into the output; the points as drawn, in
    output pixels, go into keypoints.json with the canvas, so the guides show what the model
    was given and a regenerate from edited guides draws untouched frames exactly as before."""
    drawn: list[np.ndarray] = []
    if saved is not None and all("pose_points" in f for f in saved["frames"]):
        canvas = tuple(saved["pose_canvas"]) if "pose_canvas" in saved else None
        right_first = bool(saved.get("pose_right_hand_first", False))
        for f in saved["frames"]:
            pts = _saved_points(f["pose_points"], saved, out_w, out_h)
            frames.append(_draw_output_points(pts, out_w, out_h, canvas, right_first))
            drawn.append(pts)
        return _Poses(frames, drawn, canvas, right_first=right_first)
    plan = (
        None if character is None else plan_retarget(measured_frame(kps), info.width, info.height, character)
    )
    canvas, right_first = (plan.canvas, True) if plan is not None else (frame_size, False)
    for k, k_on_frame in zip(kps, on_frame, strict=True):
        on_canvas = plan.apply(k) if plan is not None else canvas_points(k_on_frame, *canvas)
        frames.append(draw_on_canvas(on_canvas, canvas, out_w, out_h, right_first))
        drawn.append(fit_points(on_canvas, *canvas, out_w, out_h))
    return _Poses(frames, drawn, canvas, plan.ratio_by_bone_end() if plan is not None else None, right_first)


@dataclass
class _FramePass:
    """The second pass over the clip: face crops, and in replace mode masks and backgrounds."""

    info: ClipInfo
    sources: list[int]
    crop_boxes: list[tuple[int, int, int, int]]
    face_size: int
    out_w: int
    out_h: int
    progress: Progress | None

    def faces(self, face_frames) -> None:
        for n, (_idx, frame) in enumerate(iter_frames_rgb(self.info, self.sources)):
            face_frames.append(crop_face(frame, self.crop_boxes[n], self.face_size))
            self._report(n, "face")

    def faces_and_masks(self, face_frames, backgrounds, masks, segmenter, person_boxes, body_found) -> None:
        for n, (_idx, frame) in enumerate(iter_frames_rgb(self.info, self.sources)):
            frame_s = resize_by_area(frame, self.out_w, self.out_h)
            face_frames.append(crop_face(frame_s, self.crop_boxes[n], self.face_size))
            performer = person_boxes[n] if person_boxes else None
            # The embedded segmenter finds any person-like shape; where the performer is in
            # no way found (no body within a short gap, no tracked box) nobody is replaced.
            near = body_found[max(0, n - NEAR_FRAMES) : n + NEAR_FRAMES + 1]
            anyone = any(near) or performer is not None or segmenter.name == "sam2"
            bg, mask = _replace_frames(
                frame, frame_s, segmenter, self.out_w, self.out_h, performer, n, anyone
            )
            backgrounds.append(bg)
            masks.append(mask)
            self._report(n, f"face and mask ({segmenter.name})")

    def _report(self, n: int, what: str) -> None:
        if self.progress:
            self.progress(n + 1, len(self.sources), what)


def _box_in_clip(box: tuple[int, int, int, int], w: int, h: int, size: tuple[int, int]) -> tuple[int, ...]:
    """A box on the clip frame resized to ``size`` (replace mode), in clip pixels."""
    corners = np.array([[box[0], box[1], 1.0], [box[2], box[3], 1.0]])
    (x0, y0, _), (x1, y1, _) = fit_points(corners, w, h, *size, inverse=True)
    return (max(0, int(x0)), max(0, int(y0)), min(w, int(round(x1))), min(h, int(round(y1))))


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
    frame_s: np.ndarray,
    segmenter,
    out_w: int,
    out_h: int,
    performer: list | None = None,
    index: int = 0,
    anyone: bool = True,
):
    """Replace mode's background and mask of one frame: made on ``frame_s`` (the clip frame at
    the official size) as the official makes them, its performer region (the segmenter's mask,
    shaped by the segmenter's ``shape``: the official dilation and box) blacked out in the
    background and white in the mask, then both fitted into the output. ``index``: the model
    frame, for segmenters that made the clip's masks beforehand.

    The segmenter sees the clip frame at its own size (at a small output size the performer
    would be too few pixels for the models to find); its mask is resized onto ``frame_s``.

    ``performer``: the followed person's box (clip pixels) where others are in view. The
    segmenter finds everyone; only the performer is to be replaced, so people outside their
    box (with a margin for limbs reaching out) stay in the background. ``anyone``: False where
    the performer is not in the frame at all: the mask is empty and the plate kept whole."""
    import cv2

    h, w = frame.shape[:2]
    sw, sh = frame_s.shape[1], frame_s.shape[0]
    prob = padding_resize(np.asarray(segmenter.mask(frame, index), np.float32), sw, sh, cv2.INTER_LINEAR)
    if not anyone:
        prob[:] = 0.0
    if performer is not None:
        x1, y1, x2, y2 = (float(v) for v in performer[:4])
        mx, my = PERFORMER_MARGIN * (x2 - x1), PERFORMER_MARGIN * (y2 - y1)
        corners = np.array([[x1 - mx, y1 - my, 1.0], [x2 + mx, y2 + my, 1.0]])
        (fx1, fy1, _), (fx2, fy2, _) = fit_points(corners, w, h, sw, sh)
        keep = np.zeros_like(prob)
        keep[max(0, int(fy1)) : max(0, int(np.ceil(fy2))), max(0, int(fx1)) : max(0, int(np.ceil(fx2)))] = 1
        prob = prob * keep
    mask_s = segmenter.shape(prob)
    background = frame_s.copy()
    background[mask_s > 0] = 0
    if (sw, sh) == (out_w, out_h):
        return background, mask_s
    mask = padding_resize(mask_s, out_w, out_h, cv2.INTER_NEAREST)
    background = padding_resize(background, out_w, out_h, cv2.INTER_LINEAR)
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
    pts: np.ndarray, out_w: int, out_h: int, canvas: tuple[int, int] | None, right_first: bool = False
) -> np.ndarray:
    """Points in output pixels drawn on ``canvas`` (the one the job first drew them on) and fitted
    back, so stroke widths and smoothing match; without one, at the output size."""
    if canvas is None:
        return draw_pose_points(pts[:20], pts[20:62], out_h, out_w, right_hand_first=right_first)
    return draw_on_canvas(
        fit_points(pts, canvas[0], canvas[1], out_w, out_h, inverse=True), canvas, out_w, out_h, right_first
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
