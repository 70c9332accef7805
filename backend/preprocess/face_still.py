"""The face channel when there is no reference clip: a face cut from a still by the
official crop rule, or a neutral face (flat mid-grey: no expression to follow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .clip_reading import ClipError
from .pose_format import crop_face, face_box


def face_from_image(path: Path | None, size: int) -> np.ndarray:
    if path is None:
        return np.full((size, size, 3), 128, np.uint8)
    from .estimator_mediapipe import MediapipeEstimator

    rgb = np.asarray(Image.open(path).convert("RGB"))
    with MediapipeEstimator(static_images=True) as est:
        box = face_box(est.estimate(rgb), rgb.shape[0], rgb.shape[1])
    if box is None:
        raise ClipError(
            f"No face was found in {Path(path).name}. Use a front-facing photo of a face, or leave the face "
            "empty for the neutral default."
        )
    return crop_face(rgb, box, size)
