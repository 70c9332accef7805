"""Small ONNX models with the official preprocessing models' signatures, built by the tests.

- det/yolov10m.onnx: images (1, 3, 640, 640) -> (1, N, 6), here the given rows whatever the
  picture (a detector that always sees the same people).
- pose2d/vitpose_h_wholebody.onnx: input (1, 3, 256, 192) -> heatmaps (1, 133, 64, 48), here
  heatmap k = the crop's colour channel k % 3 sampled at every 4th pixel (cell i is crop
  pixel 4i, the convention ViTPose was trained with) and offset so that black is 0: point k
  lands on the brightest spot of that colour, and a saturated one gives a peak of 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _save(graph, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def make_detector(path: Path, rows: list[list[float]]) -> Path:
    det = np.asarray(rows, dtype=np.float32)[None]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
            helper.make_node("Mul", ["m", "zero"], ["z"]),
            helper.make_node("Add", ["rows", "z"], ["output0"]),
        ],
        "detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(det.shape))],
        [numpy_helper.from_array(det, "rows"), numpy_helper.from_array(np.float32(0.0), "zero")],
    )
    _save(graph, path)
    return path


def make_pose(path: Path) -> Path:
    k = 133
    w = np.zeros((k, 3, 1, 1), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    for j in range(k):
        c = j % 3
        # Normalised black is -mean/std and white (1 - mean)/std: map them to 0 and 1.
        w[j, c] = STD[c]
        b[j] = MEAN[c]
    graph = helper.make_graph(
        [
            helper.make_node("Slice", ["input", "starts", "ends", "axes", "steps"], ["p"]),
            helper.make_node("Conv", ["p", "w", "b"], ["heatmaps"]),
        ],
        "pose",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, k, 64, 48])],
        [
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(b, "b"),
            numpy_helper.from_array(np.array([0, 0], dtype=np.int64), "starts"),
            numpy_helper.from_array(np.array([256, 192], dtype=np.int64), "ends"),
            numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array([4, 4], dtype=np.int64), "steps"),
        ],
    )
    _save(graph, path)
    return path


def make_checkpoint(folder: Path, rows: list[list[float]]) -> Path:
    make_detector(folder / "det" / "yolov10m.onnx", rows)
    make_pose(folder / "pose2d" / "vitpose_h_wholebody.onnx")
    return folder


def blob_frame(w: int, h: int, blobs: list[tuple[float, float, int]], sigma: float = 10.0) -> np.ndarray:
    """Black RGB frame with Gaussian blobs (x, y, colour channel) peaking at 255."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frame = np.zeros((h, w, 3), dtype=np.float64)
    for x, y, c in blobs:
        frame[:, :, c] = np.maximum(frame[:, :, c], np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return (frame * 255 + 0.5).astype(np.uint8)
