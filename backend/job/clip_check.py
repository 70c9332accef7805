"""The clip check: in seconds, before the long wait, what a job would find in the reference
clip. Who is on the frame the performer is chosen on (everyone boxed, the followed person's
skeleton and face box drawn), and what an artist should know first: several people and no
pick, a small face, frames looked at with nobody in them, a pick on nobody.

It looks at a few frames spread over the clip with the job's own estimator and pick rule
(performer_pick), so what it shows is what the job will follow. No model is loaded."""

from __future__ import annotations

import base64
import io
import uuid
from pathlib import Path

import numpy as np

from ..preprocess.clip_reading import MODEL_FPS, probe_clip
from ..preprocess.estimator_choice import open_estimator
from ..preprocess.performer_pick import NoPersonError, Sighting, annotate, find_performer, read_frame, survey
from ..preprocess.person_track import iou
from ..preprocess.pose_format import CONFIDENCE_THRESHOLD, face_box, head_box, wholebody_to_body20
from ..protocol import ENGINE_FEATURES, CheckReply, JobRequest

SMALL_FACE_PX = 40  # a face box shorter than this (clip pixels) gives weak expressions
CROP_MARGIN = 0.25  # around the performer's box for the still-image pose


def check_clip(
    req: JobRequest,
    paths: dict[str, Path | None],
    model_dir: Path,
    estimator_factory=None,
    default_output: Path | None = None,
    roots: list[Path] | None = None,
) -> CheckReply:
    """The check's report (see _check_one); a cast is checked row by row (check_cast)."""
    if req.settings.cast:
        return check_cast(req, paths, model_dir, estimator_factory, default_output, roots)
    return _check_one(req, paths, model_dir, estimator_factory, default_output, roots)


def check_cast(
    req: JobRequest,
    paths: dict[str, Path | None],
    model_dir: Path,
    estimator_factory=None,
    default_output: Path | None = None,
    roots: list[Path] | None = None,
) -> CheckReply:
    """Every cast row checked as the one-performer job its pass is: each pick resolved to a
    person (the first row that fails fails the check), two rows on one person refused, and
    each row's warnings (small face, frames without them) named by row. ``cast``: the rows'
    reports; the preview is the first row's."""
    from dataclasses import replace

    from .cast_job import CAST_PICK_SAME, pass_paths, pass_request

    rows = []
    for n in range(len(req.settings.cast)):
        report = _check_one(
            pass_request(req, n), pass_paths(paths, n), model_dir, estimator_factory, default_output, roots
        )
        if not report.ok:
            return replace(report, error=f"Cast row {n + 1}: {report.error}", cast=[*rows, report])
        rows.append(report)
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            ra, rb = rows[a], rows[b]
            if ra.box and rb.box and ra.clip_frame == rb.clip_frame:
                if iou(np.asarray(ra.box[:4], float), np.asarray([rb.box], float))[0] > CAST_PICK_SAME:
                    error = (
                        f"Cast rows {a + 1} and {b + 1} pick the same person (clip frame {ra.clip_frame}): "
                        f"pick row {b + 1} on its own performer."
                    )
                    return replace(rb, ok=False, error=error, cast=rows)
    warnings = [f"Cast row {n + 1}: {w}" for n, r in enumerate(rows) for w in r.warnings]
    return replace(rows[0], warnings=warnings, cast=rows)


def _check_one(
    req: JobRequest,
    paths: dict[str, Path | None],
    model_dir: Path,
    estimator_factory=None,
    default_output: Path | None = None,
    roots: list[Path] | None = None,
) -> CheckReply:
    """The check's report: ``ok`` False (with ``error``) when a job would fail for want of a
    performer (the frames looked at are then kept, annotated, in the output folder as a failed
    job keeps them); ``warnings``; the followed person's box, skeleton and face box on the chosen
    frame; ``preview_png``: that frame annotated, base64."""
    s = req.settings
    from .job_inputs import confine_request

    confine_request(req, paths, roots)
    _check_character(paths)
    clip_path = paths.get("clip")
    if clip_path is None:
        return CheckReply()
    info = probe_clip(clip_path, fps=s.output_fps or None, apply_rotation=s.apply_rotation, roots=roots).view(
        s.clip_start, s.clip_frames, s.clip_speed
    )
    if not ENGINE_FEATURES[s.engine]["skeleton"]:
        # A video-driven engine reads the frames as they are and follows nobody: a playblast of a
        # stand-in or a creature drives it as well as footage of a person.
        return CheckReply()
    sources = info.model_sources(MODEL_FPS)
    pick = (float(s.person[0]), float(s.person[1])) if s.person else None
    with open_estimator(s, model_dir, False, factory=estimator_factory) as est:
        if not hasattr(est, "people"):
            return CheckReply()
        looked = survey(info, sources, est)
        try:
            performer = find_performer(
                info, sources, est, pick, s.person_frame, looked=looked, trace_back=False
            )
        except NoPersonError as exc:
            seen = exc.sightings[0] if exc.sightings else (looked[0] if looked else None)
            error = str(exc)
            parent = Path(req.output_dir) if req.output_dir else default_output
            if parent is not None:
                from .conditioning_stage import keep_what_was_found

                error += keep_what_was_found(
                    parent, f"no_performer_check_{uuid.uuid4().hex[:8]}", exc, sources, pick
                )
            return CheckReply(
                ok=False,
                error=error,
                people=_counts(looked),
                preview_png=_png(annotate(seen, None, pick)) if seen is not None else None,
            )
    assert performer is not None
    chosen = next((x for x in performer.sightings if x.model_frame == performer.frame), None)
    rgb = read_frame(info, sources[performer.frame])
    kps = _pose(s, model_dir, estimator_factory, rgb, performer.box)
    h, w = rgb.shape[:2]
    fbox = (face_box(kps, h, w) or head_box(kps, h, w)) if kps is not None else None
    warnings = _warnings(looked, performer.people, pick is not None, fbox, performer.frame)
    seen = chosen or Sighting(performer.frame, sources[performer.frame], np.zeros((0, 5)), rgb, 1.0)
    image = annotate(seen, performer.box, pick)
    _draw_pose(image, kps, fbox, seen.scale)
    return CheckReply(
        ok=True,
        warnings=warnings,
        people=_counts(looked),
        clip_frame=sources[performer.frame],
        box=[round(float(v), 1) for v in performer.box[:4]],
        face_box=list(fbox) if fbox else None,
        skeleton=bool(
            kps is not None and (wholebody_to_body20(kps)[:, 2] >= CONFIDENCE_THRESHOLD).sum() >= 3
        ),
        preview_png=_png(image),
    )


def _check_character(paths: dict[str, Path | None]) -> None:
    """The character (and face) image read as the job reads it: a decompression bomb, a
    truncated file or an EXR is refused now, not minutes into the job."""
    from ..preprocess.character_image import load_character
    from ..protocol import RequestError
    from .job_inputs import image_size_problem

    for key, what in (("character", "character image"), ("face", "face image")):
        path = paths.get(key)
        if path is None:
            continue
        problem = image_size_problem(path, what)
        if problem:
            raise RequestError(problem)
        if key == "character":
            load_character(path)


def _counts(looked: list[Sighting]) -> dict[str, int]:
    """People seen per clip frame looked at."""
    return {str(x.clip_frame): len(x.boxes) for x in looked}


def _pose(s, model_dir: Path, factory, rgb: np.ndarray, box: np.ndarray | None) -> np.ndarray | None:
    """The performer's keypoints on one frame: the still-image estimator on a crop around them
    (others in the frame are not its business)."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = 0, 0, w, h
    if box is not None:
        bw, bh = box[2] - box[0], box[3] - box[1]
        x0, y0 = int(max(0, box[0] - CROP_MARGIN * bw)), int(max(0, box[1] - CROP_MARGIN * bh))
        x1, y1 = int(min(w, box[2] + CROP_MARGIN * bw)), int(min(h, box[3] + CROP_MARGIN * bh))
    with open_estimator(s, model_dir, False, still=True, factory=factory) as est:
        kps = np.asarray(est.estimate(np.ascontiguousarray(rgb[y0:y1, x0:x1])), dtype=np.float64)
    if kps[:, 2].max() <= 0:
        return None
    placed = (kps[:, :2] != 0).any(axis=1)
    kps[placed, :2] += (x0, y0)
    return kps


def _warnings(
    looked: list[Sighting],
    people: int,
    picked: bool,
    fbox: tuple[int, int, int, int] | None,
    chosen: int,
) -> list[str]:
    out = []
    crowd = max([people, *(len(x.boxes) for x in looked)])
    if crowd > 1 and not picked:
        out.append(
            f"{crowd} people are in view: the largest is followed. Use Pick Performer to choose who drives the motion."
        )
    if fbox is None:
        out.append("The performer's face was not found on the checked frame: expressions will follow weakly.")
    elif fbox[3] - fbox[1] < SMALL_FACE_PX:
        out.append(
            f"The performer's face is small ({fbox[3] - fbox[1]} px tall in the clip): expressions will follow "
            "less closely. A closer shot helps."
        )
    empty = [x.clip_frame for x in looked if not len(x.boxes) and x.model_frame > chosen]
    if empty:
        out.append(
            "Nobody was seen at clip frame"
            + ("s " if len(empty) > 1 else " ")
            + ", ".join(map(str, empty))
            + ": the performer may leave the shot; frames without them get no skeleton."
        )
    return out


def _draw_pose(image: np.ndarray, kps: np.ndarray | None, fbox, scale: float) -> None:
    """The skeleton's confident body points and bones, and the face box, over the preview."""
    import cv2

    from ..protocol import BODY_BONES

    if kps is not None:
        body = wholebody_to_body20(kps)
        pts = [
            (round(float(x) * scale), round(float(y) * scale)) if c >= CONFIDENCE_THRESHOLD else None
            for x, y, c in body
        ]
        for a, b in BODY_BONES:  # 1-based
            if pts[a - 1] and pts[b - 1]:
                cv2.line(image, pts[a - 1], pts[b - 1], (0, 160, 255), 2)
        for p in pts:
            if p:
                cv2.circle(image, p, 3, (255, 255, 255), -1)
    if fbox:
        x0, y0, x1, y1 = (round(v * scale) for v in fbox)
        cv2.rectangle(image, (x0, y0), (x1, y1), (255, 220, 0), 1)


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
