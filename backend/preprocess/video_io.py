"""Reading reference clips frame by frame, and mapping between the clip's frame
rate and the model's native 30 fps so the output keeps the clip's length and timing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MODEL_FPS = 30.0


class ClipError(ValueError):
    """A reference clip that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    width: int
    height: int
    fps: float
    frame_count: int
    first: int = 0  # a view on part of the clip starts at this source frame

    def view(self, start: int, frames: int = 0, speed: float = 1.0) -> ClipInfo:
        """The frames a trimmed strip shows: ``frames`` from ``start`` (0: to the end), played at
        ``speed`` (a strip at 2x shows the same frames in half the time: twice the rate)."""
        if start >= self.frame_count:
            raise ClipError(
                f"The clip {self.path.name} has {self.frame_count} frames; a range starting at frame {start} "
                "is empty. Check the strip's trim."
            )
        n = self.frame_count - start if frames <= 0 else min(frames, self.frame_count - start)
        return ClipInfo(self.path, self.width, self.height, self.fps * speed, n, self.first + start)

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps


def probe_clip(path: Path) -> ClipInfo:
    path = Path(path)
    if not path.is_file():
        raise ClipError(f"Reference clip not found: {path}. Pick an existing movie file.")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ClipError(
                f"Cannot read the reference clip {path.name}: it has no decodable video frames (it may be "
                "empty, damaged, or in a codec OpenCV cannot read). Convert it to H.264 .mp4 and try again."
            )
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        # The container's frame count is unreliable for some codecs: count by decoding.
        count = 0
        while cap.grab():
            count += 1
    finally:
        cap.release()
    if count == 0 or width <= 0 or height <= 0:
        raise ClipError(f"The reference clip {path.name} has no frames. Pick a clip with at least one frame.")
    if not (1.0 <= fps <= 240.0):
        fps = MODEL_FPS
    return ClipInfo(path=path, width=width, height=height, fps=fps, frame_count=count)


def iter_frames_rgb(info: ClipInfo, indices: list[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (source index, RGB frame), streaming. ``indices`` (ascending, repeats
    allowed) picks frames; memory stays flat whatever the clip's length."""
    cap = cv2.VideoCapture(str(info.path))
    try:
        pos, frame = -1, None
        for target in range(info.frame_count) if indices is None else indices:
            while pos < target + info.first:
                if not cap.grab():
                    return
                pos += 1
                frame = None
            if frame is None:
                ok, bgr = cap.retrieve()
                if not ok:
                    return
                frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield target, frame
    finally:
        cap.release()


def model_frame_sources(frame_count: int, fps: float, model_fps: float = MODEL_FPS) -> list[int]:
    """For each frame the model generates at ``model_fps``, the clip frame it is driven by."""
    n_model = max(1, round(frame_count * model_fps / fps))
    return [min(frame_count - 1, int(round(i * fps / model_fps))) for i in range(n_model)]


def output_frame_sources(
    frame_count: int, fps: float, n_model: int, out_fps: float | None = None, model_fps: float = MODEL_FPS
) -> list[int]:
    """For each output frame at ``out_fps`` (default: the clip's rate, giving one
    frame per clip frame), the generated frame shown there. The output lasts as long
    as the clip, so it stays in sync with the clip's sound."""
    out_fps = out_fps or fps
    n_out = max(1, round(frame_count * out_fps / fps))
    return [min(n_model - 1, int(round(j * model_fps / out_fps))) for j in range(n_out)]
