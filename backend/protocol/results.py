"""The files a job writes into its result folder, declared: the add-on, scripts and the backend
itself (reusing keypoints) read them through read_job_json / read_keypoints_json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .request import RequestError
from .schema import schema_errors

JOB_SCHEMA = "wan-animate/job/1"
KEYPOINTS_SCHEMA = "wan-animate/keypoints/1"
KEYPOINTS_FORMAT = "coco-wholebody-133"
POSE_POINTS_FORMAT = "wan-pose-points"  # keypoints.json's shape with pose_points only (a Blender animation)

_NUM = {"type": "number"}
_CLIP = {
    "type": "object",
    "required": ["path", "sha256", "fps", "frame_count", "width", "height"],
    "properties": {
        "fps": _NUM,
        "frame_count": {"type": "integer"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "variable_rate": {"type": "boolean"},
        "video_start_offset_s": _NUM,
        "rotation_quarter_turns": {"type": "integer"},
    },
}
JOB_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "job_id",
        "name",
        "settings",
        "inputs",
        "fps",
        "frame_count",
        "frame_pattern",
        "output_to_model",
        "model_fps",
        "estimator",
        "tiny_random_model",
    ],
    "properties": {
        "schema": {"type": "string"},
        "job_id": {"type": "string"},
        "engine": {"type": "string"},
        "settings": {"type": "object", "required": ["width", "height", "mode"]},
        "inputs": {
            "type": "object",
            "required": ["character", "clip"],
            "properties": {"clip": {"anyOf": [{"type": "null"}, _CLIP]}},
        },
        "fps": _NUM,
        "frame_count": {"type": "integer"},
        "frame_pattern": {"type": "string"},
        "output_to_model": {"type": "array", "items": {"type": "integer"}},
        "model_fps": _NUM,
        "tiny_random_model": {"type": "boolean"},
    },
}
_POINT = {"type": "array", "items": _NUM}
KEYPOINTS_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "frames"],
    "properties": {
        "schema": {"type": "string"},
        "format": {"enum": [KEYPOINTS_FORMAT, POSE_POINTS_FORMAT]},
        "fps": _NUM,  # pose-points files: the rate the animation was sampled at
        "pose_points_width": _NUM,
        "pose_points_height": _NUM,
        "pose_size": _POINT,  # (width, height) of the frames pose_drawn is in
        "pose_canvas": _POINT,  # (width, height) the pose frames were drawn on before the fit
        "pose_right_hand_first": {"type": "boolean"},  # hands drawn right then left (retargeted)
        "frames": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "model_frame": {"type": "integer"},
                    "clip_frame": {"type": "integer"},
                    "keypoints": {"type": "array", "items": _POINT},  # 133 x [x, y, confidence], clip pixels
                    "face_box": _POINT,
                    "face_box_bridged": {"type": "boolean"},
                    "face_box_from": {"enum": ["landmarks", "head_points", "bridged"]},
                    "person_box": {"anyOf": [{"type": "null"}, _POINT]},
                    "pose_points": {"type": "array", "items": _POINT},  # drawn as they are (edited guides)
                    "pose_drawn": {
                        "type": "array",
                        "items": _POINT,
                    },  # 62 x [x, y, c] as the pose frame drew them
                },
            },
        },
    },
}


def _read_declared(path: Path | str, schema: dict[str, Any], what: str) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / what
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RequestError(f"Cannot read {path}: {exc}") from exc
    errors = schema_errors(data, schema)
    if errors:
        raise RequestError(f"{path} is not a {what} this version reads: " + "; ".join(errors[:5]))
    return data


def read_job_json(path: Path | str) -> dict[str, Any]:
    """A result's job.json (``path``: the file or its result folder), checked against its schema."""
    return _read_declared(path, JOB_JSON_SCHEMA, "job.json")


def read_keypoints_json(path: Path | str) -> dict[str, Any]:
    """A keypoints.json (or a Blender animation's pose-points file), checked against its schema."""
    return _read_declared(path, KEYPOINTS_JSON_SCHEMA, "keypoints.json")
