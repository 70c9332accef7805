"""A job's result files as the protocol declares them (bpy-free): every reader of job.json
and keypoints.json in the add-on goes through here, so a file of another version is reported
clearly instead of failing on a missing key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...backend.protocol import RequestError, read_job_json, read_keypoints_json


class ResultFileError(RuntimeError):
    """A result's job.json or keypoints.json is missing, damaged or of another version."""


def read_job(result_dir: Path | str) -> dict[str, Any]:
    try:
        return read_job_json(Path(result_dir) / "job.json")
    except RequestError as exc:
        raise ResultFileError(str(exc)) from exc


def read_keypoints(result_dir_or_file: Path | str) -> dict[str, Any]:
    p = Path(result_dir_or_file)
    try:
        return read_keypoints_json(p / "keypoints.json" if p.is_dir() else p)
    except RequestError as exc:
        raise ResultFileError(str(exc)) from exc
