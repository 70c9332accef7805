"""Detected keypoints kept between jobs on the same clip range, and the keypoints.json text.

Detection is the slow part of preprocessing and depends only on the clip's frames, the
estimator and the performer pick: a re-run with another seed, step count or size reuses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..preprocess.clip_reading import ClipInfo
from ..preprocess.conditioning import KEYPOINT_DECIMALS, Conditioning
from ..protocol import KEYPOINTS_FORMAT, KEYPOINTS_SCHEMA
from .job_inputs import key_hash

CACHED_LABEL = " (cached keypoints)"


class KeypointCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def file(self, clip_sha: str, clip: ClipInfo, estimator: str, person: list | None) -> Path:
        key = {
            "clip": clip_sha,
            "range": [clip.first, clip.frame_count, clip.fps],
            "estimator": estimator,
            "person": person,
            "format": KEYPOINTS_FORMAT,
        }
        return self.folder / f"{key_hash(key)}.json"

    @staticmethod
    def read(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # absent or half-written: detect again

    def write(self, path: Path, text: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(text)
        tmp.replace(path)


def keypoints_json(cond: Conditioning) -> dict[str, Any]:
    """keypoints.json as the protocol declares it: per model frame, the clip frame it came from,
    the 133 whole-body points in clip pixels, the face box and the followed person's box."""
    drawn = cond.drawn_points
    return {
        "schema": KEYPOINTS_SCHEMA,
        "format": KEYPOINTS_FORMAT,
        "fields": ["x", "y", "confidence"],
        # The pose frames' skeletons as drawn (after retargeting), in pixels of a pose_size frame,
        # and the canvas they were drawn on: the guides show them, a regenerate redraws them.
        **({"pose_size": list(cond.pose_size), "pose_canvas": list(cond.pose_canvas)} if drawn else {}),
        **({"pose_right_hand_first": True} if drawn and cond.pose_right_hand_first else {}),
        "frames": [
            {
                "model_frame": i,
                "clip_frame": src,
                "keypoints": np.round(k, KEYPOINT_DECIMALS).tolist(),
                "face_box": list(cond.face_boxes[i]),
                "face_box_bridged": cond.face_filled[i],
                **({"face_box_from": cond.face_from[i]} if cond.face_from else {}),
                **({"person_box": cond.person_boxes[i]} if cond.person_boxes else {}),
                **({"pose_drawn": np.round(drawn[i], KEYPOINT_DECIMALS).tolist()} if drawn else {}),
            }
            for i, (src, k) in enumerate(zip(cond.sources, cond.keypoints, strict=True))
        ],
    }
