"""A cast: several performers of one clip, each replaced by their own character, in one job.

One replace pass per cast row, in the artist's order. Every row's pose, face crops and mask come
from the ORIGINAL clip (a performer already replaced is still found where they stood); pass k's
background is the plate pass k-1 made, so each pass adds one character and keeps the others.
Masks are made disjoint before the first window (the nearer performer keeps an overlap), so no
pass paints over a character an earlier pass made. Each pass has its own window store (keyed by
its row and the plate it read): a crash in pass 3 resumes there, passes 1 and 2 read back whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..preprocess.cast_masks import arbitrate, frame_ranges
from ..preprocess.frame_folder import FrameFolder
from ..protocol import JobRequest, RequestError
from .conditioning_stage import JobConditioning, build_job_conditioning
from .job_inputs import JobInputs
from .job_report import face_warning
from .progress import PREPROCESS_SPAN, PREPROCESS_START, WINDOWS_SPAN, WINDOWS_START, JobProgress
from .result_folder import partial_result_dir, publish_result

# Two rows whose followed boxes overlap this much (intersection over union) follow one person.
CAST_PICK_SAME = 0.6
CAST_FOLDER = "cast_{}"  # each pass's own result inside the job's (1-based, as the sidebar's rows)


def run_cast(runner, job_id: str, req: JobRequest, paths: dict, progress: JobProgress, frames_dir: Path):
    """The whole cast job; ``runner``: the JobRunner whose stages each pass runs."""
    engine = runner.engine_for(req)
    n = len(req.settings.cast)
    passes = [pass_request(req, k) for k in range(n)]
    inputs = [runner.check_inputs(engine, r, pass_paths(paths, k)) for k, r in enumerate(passes)]
    model = engine.prepare(req.settings, progress.report)
    progress.check()
    t0 = time.perf_counter()
    conds = []
    for k in range(n):
        conds.append(
            build_job_conditioning(
                inputs[k],
                passes[k].settings,
                model,
                runner.model_dir,
                runner.cache,
                _pass_progress(progress, k, n),
                frames_dir / CAST_FOLDER.format(k + 1),
                runner.estimator_factory,
            )
        )
        runner.keep_thumbnail(conds[-1], passes[k].settings.person)
    refuse_same_person(conds)
    for k in range(n):
        _own_masks(inputs[k], conds[k], passes[k].settings, frames_dir / CAST_FOLDER.format(k + 1), progress)
    warnings = _disjoint_masks(conds, frames_dir)
    for w in warnings:
        progress.report(message=f"Note: {w}")
    timings = {"preprocessing": time.perf_counter() - t0}
    top = partial_result_dir(inputs[0].output_parent, job_id)
    try:
        summaries, stores = _passes(
            runner, engine, job_id, (passes, inputs, conds), model, progress, top, frames_dir
        )
        _finish(top, req, summaries, warnings, timings)
        result = publish_result(top, req.name, job_id)
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise
    for store in stores:  # the frames are in the result now; a re-run starts afresh
        store.remove()
    last = summaries[-1]
    return {
        "result_dir": str(result),
        "frame_count": last["frame_count"],
        "fps": last["fps"],
        "timings": timings,
        "warnings": warnings + [w for s in summaries for w in s["warnings"]],
    }


def _passes(runner, engine, job_id, rows, model, progress, top, frames_dir):
    """Each pass generated on the plate the one before made, its result in ``top``/cast_k."""
    passes, inputs, conds = rows
    n, plate, plate_sha = len(passes), None, None
    summaries, stores = [], []
    for k in range(n):
        p = _pass_progress(progress, k, n)
        s = passes[k].settings
        conds[k].cond.background_frames = _backgrounds(
            inputs[k], conds[k], plate, frames_dir / CAST_FOLDER.format(k + 1) / "plate", s.width, s.height
        )
        # Every row's pick splits the masks (the nearer keeps an overlap), so all of them, not
        # only this pass's, decide whether a saved window still applies.
        picks = [[list(q.settings.person or ()), q.settings.person_frame] for q in passes]
        key = {"cast_pass": k, "plate": plate_sha, "cast_picks": picks}
        generated, store = runner.generate(engine, passes[k], inputs[k], model, conds[k], p, key)
        stores.append(store)
        p.check()
        thumbnail = runner.thumbnail_folder(conds[k], s.person)
        timings = dict(generated.timings)
        written = runner.write_result(
            f"{job_id}c{k + 1}",
            engine.name,
            passes[k],
            replace(inputs[k], output_parent=top),
            model,
            conds[k],
            generated,
            p,
            timings,
            thumbnail,
        )
        folder = top / CAST_FOLDER.format(k + 1)
        Path(written["result_dir"]).rename(folder)
        plate, plate_sha = generated.frames, frames_sha(generated.frames)
        warning = face_warning(conds[k].cond.face_from)
        summaries.append(
            {
                "pass": k + 1,
                "folder": folder.name,
                "person": s.person,
                "person_frame": s.person_frame,
                "windows": generated.windows,
                "resumed_windows": generated.report.get("resumed_windows", 0),
                "frame_count": written["frame_count"],
                "fps": written["fps"],
                "plate_sha256": plate_sha,
                "warnings": ([warning] if warning else []) + (conds[k].warnings or []),
            }
        )
    return summaries, stores


def pass_paths(paths: dict[str, Path | None], k: int) -> dict[str, Path | None]:
    """The job's resolved input files as row k's pass reads them: the row's character."""
    own = {key: p for key, p in paths.items() if not key.startswith("cast_")}
    return {**own, "character": paths[f"cast_{k}"]}


def pass_request(req: JobRequest, k: int) -> JobRequest:
    """Row k as the one-performer replace job it is: its pick, its character, no cast."""
    row = req.settings.cast[k]
    settings = replace(
        req.settings, cast=[], person=list(row["person"]), person_frame=row.get("person_frame", 0)
    )
    return replace(
        req,
        settings=settings,
        character_path=row.get("character_path"),
        character_upload=row.get("character_upload"),
        name=f"cast_{k + 1}",
    )


def _pass_progress(progress: JobProgress, k: int, n: int) -> JobProgress:
    """The pass's own progress, named ("Cast 2 of 3, window 1 of 4, step 5 of 20") and placed in
    its share of the bar; the cancel is the job's, checked on every step as ever."""

    def report(**fields: Any) -> None:
        msg = fields.get("message")
        if msg:
            fields["message"] = f"Cast {k + 1} of {n}, {msg[0].lower()}{msg[1:]}"
        p = fields.get("progress")
        if p is not None:
            if p < WINDOWS_START:
                share = max(0.0, p - PREPROCESS_START) / PREPROCESS_SPAN
                fields["progress"] = PREPROCESS_START + PREPROCESS_SPAN * (k + min(share, 1.0)) / n
            else:
                share = min(1.0, (p - WINDOWS_START) / WINDOWS_SPAN)
                fields["progress"] = WINDOWS_START + WINDOWS_SPAN * (k + share) / n
        progress.report(**fields)

    return JobProgress(report, progress.cancel_event)


def _box_at(cond: JobConditioning, i: int):
    boxes = cond.cond.person_boxes
    return boxes[i] if boxes and i < len(boxes) else None


def refuse_same_person(conds: list[JobConditioning]) -> None:
    """Two rows that followed one person would replace them twice and the other never."""
    from ..preprocess.person_track import iou

    for a in range(len(conds)):
        for b in range(a + 1, len(conds)):
            both = [
                (x, y)
                for i in range(len(conds[a].cond.sources))
                if (x := _box_at(conds[a], i)) is not None and (y := _box_at(conds[b], i)) is not None
            ]
            same = [
                iou(np.asarray(x[:4], float), np.asarray([y[:4]], float))[0] > CAST_PICK_SAME for x, y in both
            ]
            if same and sum(same) > len(same) / 2:
                raise RequestError(
                    f"Cast rows {a + 1} and {b + 1} follow the same person: pick row {b + 1} on its own "
                    "performer (on a frame where the two stand apart)."
                )


def _own_masks(inputs: JobInputs, cond: JobConditioning, s, folder: Path, progress: JobProgress) -> None:
    """The mediapipe fallback's masks made again, each frame's segmentation run on the crop
    around this row's performer: mediapipe Pose segments one person a frame, and with several
    performers in view it locks onto whichever it found first, leaving the others' masks a
    patch of the selfie model's. SAM2's masks (prompted by each performer's own keypoints)
    need nothing of the kind."""
    import cv2

    from ..preprocess.clip_reading import iter_frames_rgb
    from ..preprocess.conditioning import PERFORMER_MARGIN
    from ..preprocess.pose_format import official_size, padding_resize
    from ..preprocess.segment_mediapipe import PerformerSegmenter

    c = cond.cond
    if c.mask_source != PerformerSegmenter.name or not any(b is not None for b in c.person_boxes):
        return
    out = FrameFolder(folder / "own_mask", "mask")
    known = [b for b in c.person_boxes if b is not None]
    size = (
        max(16, round(max(b[2] - b[0] for b in known) * (1 + 2 * PERFORMER_MARGIN))),
        max(16, round(max(b[3] - b[1] for b in known) * (1 + 2 * PERFORMER_MARGIN))),
    )
    segmenter = PerformerSegmenter()
    try:
        for i, (_, frame) in enumerate(iter_frames_rgb(inputs.clip, c.sources)):
            progress.check()
            box = _box_at(cond, i)
            if box is None:  # lost there: the pass's own mask, which the others' masks then cut
                out.append(np.asarray(c.mask_frames[i]))
                continue
            h, w = frame.shape[:2]
            x1, y1, x2, y2 = (float(v) for v in box[:4])
            mx, my = PERFORMER_MARGIN * (x2 - x1), PERFORMER_MARGIN * (y2 - y1)
            left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
            right, bottom = min(w, int(x2 + mx) + 1), min(h, int(y2 + my) + 1)
            if right - left < 2 or bottom - top < 2:  # predicted past the frame's edge: gone
                out.append(np.asarray(c.mask_frames[i]))
                continue
            prob = np.zeros((h, w), np.float32)
            # Pose follows its person from frame to frame on frames of one size.
            crop = cv2.resize(frame[top:bottom, left:right], size, interpolation=cv2.INTER_AREA)
            part = segmenter.mask(np.ascontiguousarray(crop))
            prob[top:bottom, left:right] = cv2.resize(part, (right - left, bottom - top))
            sw, sh = official_size(w, h, s.width, s.height)
            mask = segmenter.shape(padding_resize(prob, sw, sh, cv2.INTER_LINEAR))
            if (sw, sh) != (s.width, s.height):
                mask = padding_resize(mask, s.width, s.height, cv2.INTER_NEAREST)
            out.append(mask)
    finally:
        segmenter.close()
    c.mask_frames = out


def _disjoint_masks(conds: list[JobConditioning], frames_dir: Path) -> list[str]:
    """Every row's masks made disjoint frame by frame (the nearer performer keeps an overlap);
    the warnings name the frames where two masks met."""
    n = len(conds)
    frames = len(conds[0].cond.mask_frames)
    out = [FrameFolder(frames_dir / CAST_FOLDER.format(k + 1) / "cast_mask", "mask") for k in range(n)]
    met: dict[tuple[int, int], list[int]] = {}
    for i in range(frames):
        masks = [np.asarray(c.cond.mask_frames[i]) for c in conds]
        boxes = [_box_at(c, i) for c in conds]
        kept, overlap = arbitrate(masks, [None if b is None else float(b[3]) for b in boxes])
        for k in range(n):
            out[k].append(kept[k])
        if overlap:
            for a in range(n):
                for b in range(a + 1, n):
                    if ((masks[a] > 0) & (masks[b] > 0)).any():
                        met.setdefault((a, b), []).append(conds[0].cond.sources[i])
    for k, c in enumerate(conds):
        c.cond.mask_frames = out[k]
    return [
        f"the masks of cast rows {a + 1} and {b + 1} overlap on clip frames {frame_ranges(f)}: "
        "the nearer performer (lower in the frame) keeps the overlap there; check those frames"
        for (a, b), f in sorted(met.items())
    ]


def _backgrounds(inputs: JobInputs, cond: JobConditioning, plate, folder: Path, width: int, height: int):
    """The pass's background: the plate (the clip for the first pass, the previous pass's frames
    after) with this pass's mask blacked out, as replace mode's background is made."""
    from ..preprocess.clip_reading import iter_frames_rgb
    from ..preprocess.pose_format import padding_resize, resize_by_area

    shutil.rmtree(folder, ignore_errors=True)
    out = FrameFolder(folder, "background")
    masks = cond.cond.mask_frames
    if plate is None:
        frames = (f for _, f in iter_frames_rgb(inputs.clip, cond.cond.sources))
        # The official frame (the clip at the output's area) fitted into the output, as
        # conditioning fits replace mode's background.
        fitted = (padding_resize(resize_by_area(f, width, height), width, height) for f in frames)
    else:
        fitted = (np.array(plate[i]) for i in range(len(masks)))
    for i, frame in enumerate(fitted):
        frame[np.asarray(masks[i]) > 0] = 0
        out.append(frame)
    return out


def frames_sha(frames) -> str:
    """What a pass made, as the next pass's window store key names its plate."""
    h = hashlib.sha256()
    for f in frames:
        h.update(np.ascontiguousarray(f).tobytes())
    return h.hexdigest()


def _finish(top: Path, req: JobRequest, summaries: list[dict], warnings: list[str], timings: dict) -> None:
    """The job's own result is the last pass's (linked, not copied), its job.json listing the
    passes, so the add-on imports a cast's result as any other."""
    last = top / summaries[-1]["folder"]
    for item in last.iterdir():
        if item.name == "job.json":
            continue
        target = top / item.name
        if item.is_dir():
            shutil.copytree(item, target, copy_function=_link)
        else:
            _link(item, target)
    job = json.loads((last / "job.json").read_text())
    job["name"] = req.name
    job["settings"] = req.to_json()["settings"]
    job["cast"] = summaries
    job["cast_warnings"] = warnings
    job["resumed_windows"] = sum(s["resumed_windows"] for s in summaries)
    job.setdefault("timings_s", {})["preprocessing"] = timings["preprocessing"]
    (top / "job.json").write_text(json.dumps(job, indent=2, ensure_ascii=False))


def _link(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copyfile(src, dst)
