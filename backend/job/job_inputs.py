"""A job's inputs, read and checked before the model loads, so a bad file fails in a
second and not after a minute of loading."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..preprocess.clip_reading import MODEL_FPS, ClipInfo, inside, outside_message
from ..protocol import JobRequest, JobSettings, RequestError
from .result_folder import check_free_space, free_bytes_needed


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def key_hash(key: dict[str, Any]) -> str:
    """A short stable name for a JSON-able key (window store and keypoint cache folders)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def confine(path: Path | str, roots: list[Path] | None, label: str) -> None:
    """Refuse ``path`` unless it resolves into ``roots`` (None: not confined). Called where a
    file is opened, not only when the request came: a symlink swapped since points elsewhere."""
    if roots is not None and not inside(Path(path), roots):
        raise RequestError(outside_message(label, path))


def request_loras(req: JobRequest) -> list[str]:
    """The LoRA files a request names (the relighting one included)."""
    s = req.settings
    return [x["path"] for x in s.loras] + ([s.relight_lora] if s.relight_lora else [])


def confine_request(req: JobRequest, paths: dict[str, Path | None], roots: list[Path] | None) -> None:
    """Every file a job will read, and its output folder, inside ``roots`` as they resolve now.
    ``roots[0]`` is the uploads folder, which takes no results."""
    if roots is None:
        return
    for key, p in paths.items():
        if p is not None:
            label = f"character image of cast row {int(key[5:]) + 1}" if key.startswith("cast_") else key
            confine(p, roots, INPUT_LABELS.get(key, label))
    for lora in request_loras(req):
        confine(lora, roots, "LoRA file")
    if req.output_dir and not inside(Path(req.output_dir), roots[1:]):
        raise RequestError(f"output_dir {req.output_dir} is outside the folders this backend may write.")


INPUT_LABELS = {
    "character": "character image",
    "clip": "reference clip",
    "keypoints": "saved keypoints file",
    "face": "face image",
}


def resolve_inputs(req: JobRequest, uploads_dir: Path) -> dict[str, Path | None]:
    """The files a request names, as paths on this machine (uploads or local paths)."""

    def one(path: str | None, upload: str | None, what: str) -> Path:
        if upload:
            p = uploads_dir / Path(upload).name
            if not p.is_file():
                raise RequestError(f"upload {upload!r} for the {what} is unknown; upload it again")
            return p
        assert path is not None
        return Path(path)

    cast = {
        f"cast_{n}": one(m.get("character_path"), m.get("character_upload"), f"character of cast row {n + 1}")
        for n, m in enumerate(req.settings.cast)
    }
    out: dict[str, Path | None] = {
        # A cast names a character per row; the first stands for the job's own.
        "character": one(req.character_path, req.character_upload, "character")
        if (req.character_path or req.character_upload)
        else cast["cast_0"],
        "clip": one(req.clip_path, req.clip_upload, "reference clip")
        if (req.clip_path or req.clip_upload)
        else None,
    }
    if req.keypoints_path or req.keypoints_upload:
        out["keypoints"] = one(req.keypoints_path, req.keypoints_upload, "saved keypoints")
    if req.face_path or req.face_upload:
        out["face"] = one(req.face_path, req.face_upload, "face image")
    return {**out, **cast}


@dataclass
class JobInputs:
    paths: dict[str, Path | None]
    character: Any  # PIL image as the artist made it
    clip: ClipInfo | None  # None: motion from saved pose points
    shas: dict[str, str]
    saved: dict | None  # a keypoints.json the request brought
    output_parent: Path


def image_size_problem(path: Path, what: str) -> str | None:
    """Why an image decodes to more than a job can use, from its header alone; None otherwise
    (a file that does not open is the loader's to name)."""
    from ..preprocess.clip_reading import ClipError, InputTooLarge, image_header_size

    try:
        image_header_size(path, what)
    except InputTooLarge as exc:
        return str(exc)
    except ClipError:
        return None
    return None


def output_dir_problem(folder: Path) -> str | None:
    if folder.exists() and not folder.is_dir():
        return f"The output folder {folder} is a file, not a folder. Pick a folder for the results."
    return None


def load_inputs(
    req: JobRequest, paths: dict[str, Path | None], default_output: Path, roots: list[Path] | None = None
) -> JobInputs:
    """``roots``: remote use, the folders (uploads first) every file read must resolve into."""
    from ..preprocess.character_image import load_character
    from ..preprocess.clip_reading import clip_sha256, probe_clip

    s = req.settings
    confine_request(req, paths, roots)
    for key, what in (("character", "character image"), ("face", "face image")):
        problem = paths.get(key) is not None and image_size_problem(paths[key], what)
        if problem:
            raise RequestError(problem)
    character = load_character(paths["character"])
    clip_path = paths["clip"]
    clip = None
    if clip_path:
        # An image sequence has no rate of its own: it plays at the output's (the scene's).
        clip = probe_clip(
            clip_path, fps=s.output_fps or None, apply_rotation=s.apply_rotation, roots=roots
        ).view(s.clip_start, s.clip_frames, s.clip_speed)
    if s.mode == "replace" and clip is None:
        raise RequestError("replace mode needs a reference clip to put the character into")
    parent = Path(req.output_dir) if req.output_dir else default_output
    problem = output_dir_problem(parent)
    if problem:
        raise RequestError(problem)
    if clip is not None:
        check_free_space(parent, _disk_need(s, clip))
    shas = {
        k: (clip_sha256(v, roots) if k == "clip" else file_sha256(v))
        for k, v in paths.items()
        if v is not None
    }
    saved = None
    if paths.get("keypoints") is not None:
        from ..protocol import read_keypoints_json

        confine(paths["keypoints"], roots, INPUT_LABELS["keypoints"])
        saved = read_keypoints_json(paths["keypoints"])
    return JobInputs(paths, character, clip, shas, saved, parent)


def _disk_need(s: JobSettings, clip: ClipInfo) -> int:
    n_out = round(clip.frame_count * (s.output_fps or clip.fps) / clip.fps)
    return free_bytes_needed(n_out, s.width, s.height, round(clip.frame_count * MODEL_FPS / clip.fps))
