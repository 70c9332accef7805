"""The job's conditioning: the character fitted to the output, the performer's keypoints
(detected, from the keypoint cache, or reused from a saved keypoints.json), and the frames
the model reads (pose, face crops, and in replace mode background and mask)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engines import PreparedModel
from ..preprocess.clip_reading import MODEL_FPS
from ..preprocess.conditioning import Conditioning, build_conditioning, conditioning_from_points
from ..preprocess.estimator_choice import open_estimator
from ..preprocess.performer_pick import NoPersonError, Performer, find_performer, track_warnings
from ..preprocess.pose_format import CONFIDENCE_THRESHOLD
from ..preprocess.retarget import CharacterPose, character_canvas
from ..protocol import JobSettings
from .job_inputs import JobInputs
from .keypoint_cache import CACHED_LABEL, KeypointCache, keypoints_json
from .progress import JobProgress


@dataclass
class JobConditioning:
    cond: Conditioning
    reference: Any  # the character image fitted to the output size (PIL)
    estimator: str  # what found the keypoints, as job.json reports it
    keypoints_text: str | None  # keypoints.json; None when driven by pose points alone
    character_kps: CharacterPose | None  # the character's own pose, when retargeting applies
    performer: Performer | None = None  # who was followed and where they were chosen
    warnings: list[str] | None = None  # about the followed track (lost, jumps)
    # An engine that reads no skeleton: the clip's frames at the model's rate, fitted to the output.
    driving: Any = None


def build_job_conditioning(
    inputs: JobInputs,
    s: JobSettings,
    model: PreparedModel,
    model_dir: Path,
    cache: KeypointCache,
    progress: JobProgress,
    frames_dir: Path,
    estimator_factory=None,
) -> JobConditioning:
    from ..preprocess.character_image import fit_character

    reference = fit_character(inputs.character, s.width, s.height)
    cuda = model.device.startswith("cuda")
    clip = inputs.clip
    if not model.needs_pose:
        return _driving_frames(inputs, s, model, reference, progress, frames_dir)
    if clip is None:
        return _from_pose_points(inputs, s, model, reference)
    character_kps = _character_pose(s, model_dir, cuda, inputs.character, estimator_factory)
    common = dict(
        out_w=s.width,
        out_h=s.height,
        face_size=model.face_size,
        progress=progress.preprocessing,
        model_fps=MODEL_FPS,
        replace=s.mode == "replace",
        frames_dir=frames_dir,
        model_dir=model_dir,  # replace masks: SAM2 when <model_dir>/sam2 holds it
        character=character_kps,
    )
    if inputs.saved is not None:
        edited = bool(inputs.saved["frames"]) and "pose_points" in inputs.saved["frames"][0]
        cond = build_conditioning(clip, None, saved=inputs.saved, **common)
        name = "reused keypoints" + (" with edited guides" if edited else "")
        return JobConditioning(cond, reference, name, _keypoints_text(cond), character_kps)
    pick = (float(s.person[0]), float(s.person[1])) if s.person else None
    with open_estimator(s, model_dir, cuda, factory=estimator_factory) as estimator:
        name = getattr(estimator, "name", type(estimator).__name__)
        cache_file = cache.file(
            inputs.shas["clip"], clip, name, None if pick is None else [*pick, s.person_frame]
        )
        cached = cache.read(cache_file)
        performer = None
        try:
            if cached is None:
                # Seconds, not minutes: nobody in the clip, or a pick on nobody, fails here.
                progress.report(stage="preprocessing", message="Looking for the performer")
                performer = find_performer(
                    clip,
                    clip.model_sources(MODEL_FPS),
                    estimator,
                    pick,
                    s.person_frame,
                    _looking(progress),
                )
            cond = build_conditioning(clip, None if cached else estimator, saved=cached, **common)
        except NoPersonError as exc:
            kept = keep_what_was_found(
                inputs.output_parent,
                f"no_performer_{frames_dir.name[:8]}",
                exc,
                clip.model_sources(MODEL_FPS),
                pick,
            )
            raise type(exc)(f"{exc}{kept}") from exc
    # Serialised once: the cache (after a fresh detection) and the result keep the same text.
    text = _keypoints_text(cond)
    if cached is None and text is not None:
        cache.write(cache_file, text)
    warnings = track_warnings(cond.keypoints, cond.sources, CONFIDENCE_THRESHOLD) + _pick_kept(
        performer, cond
    )
    for w in warnings:
        progress.report(message=f"Note: {w}")
    return JobConditioning(
        cond, reference, name + CACHED_LABEL if cached else name, text, character_kps, performer, warnings
    )


def _driving_frames(
    inputs: JobInputs,
    s: JobSettings,
    model: PreparedModel,
    reference,
    progress: JobProgress,
    frames_dir: Path,
) -> JobConditioning:
    """The clip's own frames drive the model: no pose, no face crops, no performer to follow.
    Streamed to disk (a long clip never sits in memory), fitted to the output size by the
    engine's own rule."""
    from ..preprocess.clip_reading import iter_frames_rgb
    from ..preprocess.frame_folder import FrameFolder
    from ..protocol import RequestError

    clip = inputs.clip
    if clip is None:
        raise RequestError(
            "This engine is driven by a video: give a reference clip, or choose Wan2.2-Animate."
        )
    sources = clip.model_sources(model.fps)
    driving = FrameFolder(frames_dir / "driving", "driving")
    for i, (_, frame) in enumerate(iter_frames_rgb(clip, sources)):
        driving.append(model.fit_driving(frame, s.width, s.height))
        progress.preprocessing(i + 1, len(sources), "driving")
    cond = Conditioning(sources, [], [], [], [], [])
    return JobConditioning(cond, reference, "none (driven by the clip's frames)", None, None, driving=driving)


def _looking(progress: JobProgress):
    """Progress of the look for the performer: a message (and the cancel check) every few
    frames, leaving the progress bar to the pose pass that follows."""

    def report(i: int, n: int, what: str) -> None:
        progress.check()
        if i == n or i % 5 == 0:
            progress.report(message=f"Preprocessing: {what} {i}/{n} frames")

    return report


def keep_what_was_found(
    parent: Path, name: str, exc: NoPersonError, sources: list[int], pick: tuple[float, float] | None
) -> str:
    """A failed look for the performer leaves its evidence for the artist: the frames looked at,
    with every detected person boxed and the pick marked, and the keypoints a full pass found.
    Returns the sentence that says where (empty if it could not be written: the failure's own
    message matters more than its evidence)."""
    from ..preprocess.performer_pick import write_annotated
    from ..protocol import KEYPOINTS_FORMAT, KEYPOINTS_SCHEMA

    folder = Path(parent) / name
    n = 1
    while folder.exists():  # never into an earlier failure's folder
        folder, n = Path(parent) / f"{name}_{n}", n + 1
    try:
        write_annotated(folder, exc.sightings, pick)
        if exc.keypoints is not None:
            frames = [
                {"model_frame": i, "clip_frame": src, "keypoints": np.round(k, 3).tolist()}
                for i, (src, k) in enumerate(zip(sources, exc.keypoints, strict=False))
            ]
            doc = {
                "schema": KEYPOINTS_SCHEMA,
                "format": KEYPOINTS_FORMAT,
                "fields": ["x", "y", "confidence"],
                "frames": frames,
            }
            (folder / "keypoints.json").write_text(json.dumps(doc))
    except OSError:
        return ""
    return f" What was looked at is in {folder}."


def _pick_kept(performer: Performer | None, cond: Conditioning) -> list[str]:
    """The pass must have followed the person picked on the frame they were picked on; a look
    alike chosen earlier (same clothes) would carry the track to someone else."""
    from ..preprocess.person_track import iou

    if performer is None or not performer.picked or performer.box is None or not cond.person_boxes:
        return []
    followed = cond.person_boxes[performer.frame]
    if followed is not None and iou(np.asarray(performer.box[:4]), np.asarray([followed]))[0] >= 0.3:
        return []
    return [
        f"on clip frame {cond.sources[performer.frame]}, where the performer was picked, the skeleton is not on "
        "the person picked: someone who looks alike was followed before it; check the pose frames, and pick "
        "the performer on an earlier frame"
    ]


def _from_pose_points(inputs: JobInputs, s: JobSettings, model: PreparedModel, reference) -> JobConditioning:
    """No clip: the motion of a Blender animation, a face image or the neutral face."""
    from ..preprocess.face_still import face_from_image

    assert inputs.saved is not None
    face_path = inputs.paths.get("face")
    face = face_from_image(face_path, model.face_size)
    cond = conditioning_from_points(inputs.saved, s.width, s.height, face, MODEL_FPS)
    name = "Blender animation" + (", face from image" if face_path else ", neutral face")
    return JobConditioning(cond, reference, name, _keypoints_text(cond), None)


def _character_pose(s: JobSettings, model_dir: Path, cuda: bool, character, factory) -> CharacterPose | None:
    """The character's pose, when retargeting applies, estimated where the official
    preprocessing estimates it: on the character image fitted into the official canvas."""
    if s.mode != "animate" or s.retarget == "off":
        return None
    image = character_canvas(np.asarray(character.convert("RGB")), s.width, s.height)
    with open_estimator(s, model_dir, cuda, still=True, factory=factory) as estimator:
        kps = estimator.estimate(image)
    return CharacterPose(kps, image.shape[1], image.shape[0]) if kps[:, 2].max() > 0 else None


def _keypoints_text(cond: Conditioning) -> str | None:
    return json.dumps(keypoints_json(cond)) if cond.keypoints else None


PERFORMER_THUMBNAIL = "performer.png"


def write_performer_thumbnail(folder: Path, conditioning: JobConditioning, pick: list | None) -> str | None:
    """The frame the performer was chosen on, everyone found boxed and the followed one green:
    the artist sees at a glance whom the job followed."""
    from PIL import Image

    from ..preprocess.performer_pick import annotate

    p = conditioning.performer
    if p is None or not p.sightings:
        return None
    seen = next((s for s in p.sightings if s.model_frame == p.frame), p.sightings[-1])
    point = (float(pick[0]), float(pick[1])) if pick else None
    Image.fromarray(annotate(seen, p.box, point)).save(Path(folder) / PERFORMER_THUMBNAIL)
    return PERFORMER_THUMBNAIL
