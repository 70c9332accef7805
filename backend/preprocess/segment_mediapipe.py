"""Replace mode's performer mask from mediapipe's bundled models (offline, CPU): the fallback
when the model folder has no SAM2. The mask is then shaped by the official rule
(mask_shape.py), so the model regenerates the box around the performer rather than a tight
silhouette. White = regenerate.

The selfie-segmentation model is an upper-body model: on a full-body shot it covers head,
chest and arms and never the hips and legs, so the old performer's legs stayed in the plate.
mediapipe Pose's segmentation covers the whole body; the mask is the union of the two (the
selfie model still catches a close-up the pose model may not)."""

from __future__ import annotations

import cv2
import numpy as np

from .mask_shape import official_shape


class MediapipeSegmenter:
    name = "mediapipe-selfie-segmentation"

    def __init__(self) -> None:
        from mediapipe.python.solutions import selfie_segmentation

        self._seg = selfie_segmentation.SelfieSegmentation(model_selection=0)

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """Performer probability (H, W) float32 in [0, 1]."""
        res = self._seg.process(np.ascontiguousarray(rgb))
        if res.segmentation_mask is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return res.segmentation_mask.astype(np.float32)

    def close(self) -> None:
        self._seg.close()


# Models run on the frame scaled to this long side at most: enough for a person's outline, and
# a 4K plate costs no more than a 720p one.
SEGMENT_MAX_SIDE = 640


class PerformerSegmenter:
    """Whole-body performer probability: mediapipe Pose's segmentation (followed from frame
    to frame) united with the selfie model's. The fallback when the model folder has no SAM2
    (segment_sam2.py); its masks are shaped by the same official rule (mask_shape.py)."""

    name = "mediapipe-pose-segmentation+selfie"

    def __init__(self) -> None:
        from mediapipe.python.solutions import pose

        self._pose = pose.Pose(
            static_image_mode=False, model_complexity=1, enable_segmentation=True, smooth_segmentation=True
        )
        self._selfie = MediapipeSegmenter()

    def mask(self, rgb: np.ndarray, index: int = 0) -> np.ndarray:
        """Performer probability (H, W) of this frame; ``index`` (the model frame) is not needed:
        the models follow the clip frame by frame as they are given it."""
        h, w = rgb.shape[:2]
        scale = min(1.0, SEGMENT_MAX_SIDE / max(h, w))
        small = (
            cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            if scale < 1
            else rgb
        )
        small = np.ascontiguousarray(small)
        res = self._pose.process(small)
        prob = self._selfie.mask(small)
        if res.segmentation_mask is not None:
            prob = np.maximum(prob, res.segmentation_mask.astype(np.float32))
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR) if scale < 1 else prob

    def shape(self, prob: np.ndarray) -> np.ndarray:
        return official_shape(prob >= 0.5)

    def close(self) -> None:
        self._pose.close()
        self._selfie.close()
