"""Which pose estimator a job uses: ViTPose (the official YOLO + ViTPose-H ONNX models) when
they are in the model folder, mediapipe otherwise, or what the request names."""

from __future__ import annotations

from pathlib import Path

from ..protocol import JobSettings, RequestError


def open_estimator(settings: JobSettings, model_dir: Path, cuda: bool, still: bool = False, factory=None):
    """A context manager yielding the estimator; ``still``: for the character image. The
    performer pick is applied afterwards (performer_pick.find_performer)."""
    if factory is not None:
        return factory()
    from . import estimator_onnx

    checkpoint = Path(model_dir) / "process_checkpoint"
    choice = settings.estimator
    if choice == "auto":
        choice = "vitpose" if estimator_onnx.checkpoint_ready(checkpoint) else "mediapipe"
    if choice == "vitpose":
        try:
            return estimator_onnx.OnnxPoseEstimator(checkpoint, cuda=cuda)
        except RuntimeError as exc:
            raise RequestError(str(exc)) from exc
    from .estimator_mediapipe import MediapipeEstimator

    return MediapipeEstimator(static_images=still)
