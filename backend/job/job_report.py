"""job.json: what a job made and how, as the protocol declares it (JOB_JSON_SCHEMA)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engines import Generated, PreparedModel
from ..protocol import JOB_SCHEMA, JobRequest
from .conditioning_stage import JobConditioning
from .job_inputs import JobInputs
from .result_folder import FRAME_PATTERN


@dataclass
class JobRecord:
    job_id: str
    engine: str
    req: JobRequest
    inputs: JobInputs
    model: PreparedModel
    conditioning: JobConditioning
    generated: Generated
    order: list[int]  # for each output frame, the generated frame shown there
    fps: float
    timings: dict[str, float]


def job_json(r: JobRecord) -> dict[str, Any]:
    s = r.req.settings
    return {
        "schema": JOB_SCHEMA,
        "job_id": r.job_id,
        "name": r.req.name,
        "engine": r.engine,
        "tiny_random_model": r.model.tiny,
        "warning": "made by a tiny random test model: not a real Wan-Animate result"
        if r.model.tiny
        else None,
        **{k: v for k, v in r.model.report.items() if k != "model_load_s"},
        "settings": r.req.to_json()["settings"],
        "seed": s.seed,
        "inputs": _inputs(r),
        "estimator": r.conditioning.estimator,
        "faces": face_report(r.conditioning.cond.face_from),
        "masks": r.conditioning.cond.mask_source,  # replace mode: "sam2" or the mediapipe fallback
        "performer": _performer_report(r),
        "warnings": ([w] if (w := face_warning(r.conditioning.cond.face_from)) else [])
        + (r.conditioning.warnings or []),
        "model_frames": len(r.conditioning.cond.sources),
        "retarget": _retarget_report(r),
        "colour_match": s.colour_match,
        **r.generated.report,
        "model_fps": r.model.fps,
        "windows": r.generated.windows,
        "frame_count": len(r.order),
        "output_to_model": r.order,
        "fps": r.fps,
        "frame_pattern": FRAME_PATTERN,
        "timings_s": r.timings,
        "versions": _versions(),
    }


def face_report(face_from: list[str]) -> dict[str, int]:
    """How many face crops came from the face landmarks, from the head points, or were bridged."""
    return {k: face_from.count(k) for k in ("landmarks", "head_points", "bridged")}


def face_warning(face_from: list[str]) -> str | None:
    weak = len(face_from) - face_from.count("landmarks")
    if not face_from or weak == 0:
        return None
    return (
        f"the face was small, turned or hidden in {weak} of {len(face_from)} frames: its crops there come "
        "from the head's position, so expressions follow less closely"
    )


def _performer_report(r: JobRecord) -> dict[str, Any] | None:
    """Whom the job followed: where they were chosen, their box there and the thumbnail."""
    from .conditioning_stage import PERFORMER_THUMBNAIL

    p, s = r.conditioning.performer, r.req.settings
    if p is None:
        return None
    cond = r.conditioning.cond
    return {
        "picked": p.picked,
        "point": s.person,
        "model_frame": p.frame,
        "clip_frame": cond.sources[p.frame] if p.frame < len(cond.sources) else None,
        "box": None if p.box is None else [round(float(v), 1) for v in p.box[:4]],
        "people_on_frame": p.people,
        "followed_from_clip_frame": cond.sources[p.seed_frame] if p.seed_frame < len(cond.sources) else None,
        "thumbnail": PERFORMER_THUMBNAIL if p.sightings else None,
    }


def _inputs(r: JobRecord) -> dict[str, Any]:
    clip, paths, shas = r.inputs.clip, r.inputs.paths, r.inputs.shas
    saved = r.inputs.saved
    return {
        "character": {"path": str(paths["character"]), "sha256": shas["character"]},
        "clip": {
            "path": str(paths["clip"]),
            "sha256": shas["clip"],
            "fps": clip.fps,
            "frame_count": clip.frame_count,
            "width": clip.width,
            "height": clip.height,
            "variable_rate": clip.variable_rate,
            "video_start_offset_s": clip.video_start_offset_s,
            "rotation_quarter_turns": clip.rotation,
        }
        if clip
        else None,
        "pose_points": {
            "path": str(paths["keypoints"]),
            "fps": float(saved["fps"]),
            "frame_count": len(saved["frames"]),
        }
        if clip is None and saved is not None
        else None,
        "face": {"path": str(paths["face"])} if paths.get("face") else None,
    }


def _retarget_report(r: JobRecord) -> dict[str, Any]:
    s, cond = r.req.settings, r.conditioning.cond
    if cond.retarget_ratios:
        from ..protocol import BODY_NAMES

        ratios = {BODY_NAMES[b]: round(v, 3) for b, v in sorted(cond.retarget_ratios.items())}
        # Ratios at one body height (the official's): 1.0 is the performer's proportion.
        return {"applied": True, "rule": "official", "length_ratio_by_bone_end": ratios}
    if s.mode != "animate" or s.retarget == "off" or r.inputs.clip is None:
        return {"applied": False, "why": "off" if s.retarget == "off" else "not used in this mode"}
    why = "the character's pose was not found in its image"
    if r.conditioning.character_kps is not None:
        why = "the character image does not show the shoulders, or no frame of the clip shows the performer's"
    return {"applied": False, "why": why}


def _versions() -> dict[str, str]:
    import diffusers
    import torch

    from .. import __version__

    return {"backend": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__}
