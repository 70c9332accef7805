"""The official preprocessing models through onnxruntime: YOLOv10m finds people, one performer
is followed through the clip, and ViTPose-H whole-body gives their 133 COCO-WholeBody points.

The models come from Wan-AI/Wan2.2-Animate-14B's ``process_checkpoint`` folder (fetched by
``python -m backend download``). Their input/output conventions, which the decoding here
follows:
- detector ``det/yolov10m.onnx``: RGB resized (not letterboxed) to 640x640, scaled to [0, 1],
  NCHW float32; output (1, N, 6) rows of x1, y1, x2, y2, score, class in 640x640 pixels,
  class 0 = person, already without duplicates (YOLOv10 has no NMS step).
- pose ``pose2d/vitpose_h_wholebody.onnx``: a 192x256 (w x h) crop around the person box
  grown 1.25x at the model's 3:4 aspect, ImageNet mean/std, NCHW float32; output heatmaps
  (1, 133, 64, 48). Each point is the heatmap's peak refined to sub-pixel by a Taylor step on
  the log of the smoothed heatmap ("DARK", as the official decoder's unbiased mode); its
  confidence is the peak's height.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from .performer_pick import box_look
from .person_track import PersonTracker
from .pose_format import NUM_WHOLEBODY

DETECTOR_FILE = Path("det") / "yolov10m.onnx"
POSE_FILE = Path("pose2d") / "vitpose_h_wholebody.onnx"
PERSON_SCORE = 0.3  # detections below this are not candidates for the performer
BOX_GROWTH = 1.25
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def checkpoint_ready(folder: Path) -> bool:
    return (Path(folder) / DETECTOR_FILE).is_file() and (Path(folder) / POSE_FILE).is_file()


def _session(path: Path, cuda: bool):
    """The session for ``path``, made once per backend: a job opens the estimator twice (the
    character still and the clip) and ViTPose-H alone is 2.5 GB to read."""
    st = Path(path).stat()
    return _cached_session(str(path), st.st_mtime_ns, st.st_size, cuda)


@functools.lru_cache(maxsize=4)
def _cached_session(path: str, _mtime_ns: int, _size: int, cuda: bool):
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=providers)


def crop_box(box: np.ndarray, in_w: int, in_h: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre and (w, h) of the crop around ``box``: grown, at the model's aspect."""
    x1, y1, x2, y2 = box[:4]
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    aspect = in_w / in_h
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    return centre, np.array([w, h]) * BOX_GROWTH


def refine_peaks(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, H, W) heatmaps -> (K, 2) sub-pixel peak positions (x, y) and (K,) peak heights."""
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, -1)
    idx = flat.argmax(axis=1)
    heights = flat[np.arange(k), idx]
    xy = np.stack([idx % w, idx // w], axis=1).astype(np.float64)
    # Smooth, then take a Newton step on log(heatmap): a Gaussian peak's log is a paraboloid,
    # so one step lands on its true centre between pixels.
    for j in range(k):
        x, y = int(xy[j, 0]), int(xy[j, 1])
        if not (1 <= x < w - 1 and 1 <= y < h - 1) or heights[j] <= 0:
            continue
        hm = cv2.GaussianBlur(heatmaps[j].astype(np.float64), (11, 11), 0)
        hm = np.log(np.maximum(hm, 1e-10))
        dx = 0.5 * (hm[y, x + 1] - hm[y, x - 1])
        dy = 0.5 * (hm[y + 1, x] - hm[y - 1, x])
        dxx = hm[y, x + 1] - 2 * hm[y, x] + hm[y, x - 1]
        dyy = hm[y + 1, x] - 2 * hm[y, x] + hm[y - 1, x]
        dxy = 0.25 * (hm[y + 1, x + 1] - hm[y + 1, x - 1] - hm[y - 1, x + 1] + hm[y - 1, x - 1])
        hess = np.array([[dxx, dxy], [dxy, dyy]])
        if abs(np.linalg.det(hess)) < 1e-12:
            continue
        step = -np.linalg.solve(hess, np.array([dx, dy]))
        if np.all(np.abs(step) <= 1.0):  # a step beyond a pixel means the peak is not Gaussian
            xy[j] += step
    return xy, heights


class OnnxPoseEstimator:
    """Stateful per clip: frames must arrive in order (the performer is tracked)."""

    name = "vitpose-h-wholebody (onnx)"

    def __init__(self, checkpoint: Path, cuda: bool = False) -> None:
        checkpoint = Path(checkpoint)
        for f in (DETECTOR_FILE, POSE_FILE):
            if not (checkpoint / f).is_file():
                raise RuntimeError(
                    f"{checkpoint / f} is missing: run `python -m backend download` to fetch the official "
                    "preprocessing models, or choose the mediapipe estimator."
                )
        self._det = _session(checkpoint / DETECTOR_FILE, cuda)
        self._pose = _session(checkpoint / POSE_FILE, cuda)
        det_shape = self._det.get_inputs()[0].shape
        # A model exported with a dynamic size says so with a name, not a number: it takes 640.
        fixed = isinstance(det_shape[2], int) and isinstance(det_shape[3], int)
        self._det_h, self._det_w = (int(det_shape[2]), int(det_shape[3])) if fixed else (640, 640)
        pose_shape = self._pose.get_inputs()[0].shape
        self._in_h, self._in_w = int(pose_shape[2]), int(pose_shape[3])
        self.tracker = PersonTracker(None)
        self.boxes: list[np.ndarray | None] = []  # the performer's box per frame, as tracked

    def __enter__(self) -> OnnxPoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def follow_from(self, frame: int, box: np.ndarray) -> None:
        """Follow the person in ``box`` from the ``frame``-th frame on (see PersonTracker)."""
        self.tracker.follow_from(frame, box)

    def people(self, rgb: np.ndarray) -> np.ndarray:
        """Everyone in one frame, (N, 5) boxes, without touching the track."""
        return self.detect(rgb)

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """Person boxes (N, 5) in frame pixels: x1, y1, x2, y2, score."""
        h, w = rgb.shape[:2]
        img = cv2.resize(rgb, (self._det_w, self._det_h), interpolation=cv2.INTER_LINEAR)
        x = (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        out = np.asarray(self._det.run(None, {self._det.get_inputs()[0].name: x})[0]).reshape(-1, 6)
        keep = (out[:, 5] == 0) & (out[:, 4] >= PERSON_SCORE)
        boxes = out[keep][:, :5].astype(np.float64)
        boxes[:, [0, 2]] *= w / self._det_w
        boxes[:, [1, 3]] *= h / self._det_h
        return boxes

    def pose(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(133, 3) keypoints in frame pixels for the person in ``box``."""
        centre, size = crop_box(box, self._in_w, self._in_h)
        # Affine from the crop rectangle onto the model's input.
        sx, sy = self._in_w / size[0], self._in_h / size[1]
        m = np.array(
            [[sx, 0, self._in_w / 2 - sx * centre[0]], [0, sy, self._in_h / 2 - sy * centre[1]]],
            dtype=np.float64,
        )
        crop = cv2.warpAffine(rgb, m, (self._in_w, self._in_h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        x = ((crop.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]
        heat = np.asarray(self._pose.run(None, {self._pose.get_inputs()[0].name: x})[0])[0]
        hm_h, hm_w = heat.shape[1:]
        xy, conf = refine_peaks(heat)
        out = np.zeros((NUM_WHOLEBODY, 3), dtype=np.float64)
        n = min(NUM_WHOLEBODY, len(conf))
        # Heatmap cell -> crop pixels -> frame pixels (cell size = crop size / heatmap size).
        out[:n, 0] = centre[0] - size[0] / 2 + xy[:n, 0] * size[0] / hm_w
        out[:n, 1] = centre[1] - size[1] / 2 + xy[:n, 1] * size[1] / hm_h
        out[:n, 2] = np.clip(conf[:n], 0.0, 1.0)
        return out

    def estimate(self, rgb: np.ndarray) -> np.ndarray:
        """One RGB frame -> the performer's (133, 3) keypoints; all-zero when nobody is there."""
        people = self.detect(rgb)
        # Clothes keep the track on the performer where boxes cross or the detector misses them.
        box = self.tracker.update(people, [box_look(rgb, b) for b in people])
        self.boxes.append(box)
        if box is None:
            return np.zeros((NUM_WHOLEBODY, 3), dtype=np.float64)
        return self.pose(rgb, box)
