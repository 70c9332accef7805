"""One job, start to finish, as the algorithm reads: check the inputs, prepare the model,
build the conditioning, generate window by window, write the result and its report.

Each stage is a function of its own; progress and cancel go through one JobProgress
(checked on every preprocessed frame and every denoising step); the model is reached
only through the engine seam (backend/engines/)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engines import Engine, EngineSource, Generated, PreparedModel, ShotFrames
from ..preprocess.clip_reading import output_frame_sources
from ..protocol import JobRequest
from .conditioning_stage import (
    PERFORMER_THUMBNAIL,
    JobConditioning,
    build_job_conditioning,
    write_performer_thumbnail,
)
from .job_inputs import JobInputs, key_hash, load_inputs
from .job_report import JobRecord, face_warning, job_json
from .keypoint_cache import CACHED_LABEL, KeypointCache
from .progress import Cancelled, JobProgress, Report
from .result_folder import partial_result_dir, publish_result, remove_stale_partials, write_frames

__all__ = ["Cancelled", "JobRunner"]


class JobRunner:
    def __init__(
        self,
        engines: EngineSource,
        model_dir: Path,
        default_output: Path,
        estimator_factory=None,
        work_dir: Path | None = None,
        roots: list[Path] | None = None,
    ) -> None:
        self.engines = engines
        self.roots = roots  # remote use: every file a job reads resolves into these when opened
        self.model_dir = Path(model_dir)
        self.default_output = Path(default_output)
        # Finished windows of unfinished jobs live here until the job completes.
        self.work_dir = Path(work_dir) if work_dir else self.default_output.parent / "windows"
        self.cache = KeypointCache(self.work_dir.parent / "keypoints-cache")
        self.estimator_factory = estimator_factory
        remove_stale_partials(self.default_output)

    def run(
        self,
        job_id: str,
        req: JobRequest,
        paths: dict[str, Path | None],
        report: Report,
        cancel: threading.Event,
    ) -> dict[str, Any]:
        # Conditioning frames stream to disk here; a finished job moves them into its result,
        # anything left (a failure, a cancel) goes.
        frames_dir = self.work_dir.parent / "conditioning" / job_id
        shutil.rmtree(frames_dir, ignore_errors=True)
        try:
            return self._run(job_id, req, paths, JobProgress(report, cancel), frames_dir)
        finally:
            shutil.rmtree(frames_dir, ignore_errors=True)

    def _run(
        self,
        job_id: str,
        req: JobRequest,
        paths: dict[str, Path | None],
        progress: JobProgress,
        frames_dir: Path,
    ) -> dict[str, Any]:
        if req.settings.cast:  # several performers: one replace pass each (cast_job.py)
            from .cast_job import run_cast

            return run_cast(self, job_id, req, paths, progress, frames_dir)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        engine = self.engine_for(req)
        inputs = self.check_inputs(engine, req, paths)
        timings["inputs"] = time.perf_counter() - t0

        model = engine.prepare(req.settings, progress.report)
        timings["model_load"] = model.report.get("model_load_s", 0.0)
        progress.check()

        t0 = time.perf_counter()
        conditioning = build_job_conditioning(
            inputs,
            req.settings,
            model,
            self.model_dir,
            self.cache,
            progress,
            frames_dir,
            self.estimator_factory,
        )
        timings["preprocessing"] = time.perf_counter() - t0
        thumbnail = self.keep_thumbnail(conditioning, req.settings.person)
        warning = face_warning(conditioning.cond.face_from)
        if warning:
            progress.report(message=f"Note: {warning}")

        generated, store = self.generate(engine, req, inputs, model, conditioning, progress)
        timings.update(generated.timings)
        progress.check()

        result = self.write_result(
            job_id, engine.name, req, inputs, model, conditioning, generated, progress, timings, thumbnail
        )
        store.remove()  # the frames are in the result now; a re-run starts afresh
        return {**result, "warnings": ([warning] if warning else []) + (conditioning.warnings or [])}

    def engine_for(self, req: JobRequest) -> Engine:
        return self.engines.get(req.settings.engine)

    def keep_thumbnail(self, conditioning: JobConditioning, pick: list | None) -> Path:
        thumbnail = self.thumbnail_folder(conditioning, pick)
        if conditioning.performer is not None:
            # Kept beside the keypoint cache now, not only in the result: a job resumed after a
            # crash, or a re-run, reuses the keypoints without looking for the performer again.
            thumbnail.mkdir(parents=True, exist_ok=True)
            write_performer_thumbnail(thumbnail, conditioning, pick)
        return thumbnail

    def thumbnail_folder(self, conditioning: JobConditioning, pick: list | None) -> Path:
        text = conditioning.keypoints_text or ""
        return self.cache.folder / "performer" / key_hash({"keypoints": text, "person": pick})

    def check_inputs(self, engine: Engine, req: JobRequest, paths: dict[str, Path | None]) -> JobInputs:
        """Inputs are checked before the model loads so a bad file fails in a second, not a minute."""
        from ..protocol import RequestError

        problem = engine.model_problem(self.model_dir)
        if problem:
            raise RequestError(problem)
        return load_inputs(req, paths, self.default_output, self.roots)

    def generate(
        self,
        engine: Engine,
        req: JobRequest,
        inputs: JobInputs,
        model: PreparedModel,
        conditioning: JobConditioning,
        progress: JobProgress,
        cast_key: dict | None = None,
    ) -> tuple[Generated, Any]:
        """``cast_key``: a cast pass's row and the plate it read, so each pass resumes its own windows."""
        from ..generation.window_store import WindowStore

        s, cond = req.settings, conditioning.cond
        # Read lazily, one window's frames at a time; the pipeline needs more frames than the
        # overlap, so a very short clip holds its last frame.
        least = s.overlap + 1
        shot = ShotFrames(
            reference=conditioning.reference,
            pose=_Images(cond.pose_frames, least),
            face=_Images(cond.face_frames, least),
            background=_Images(cond.background_frames, least) if len(cond.background_frames) else None,
            mask=_Images(cond.mask_frames, least, "L") if len(cond.mask_frames) else None,
            # An engine that reads no skeleton is driven by the clip's own frames.
            driving=None if conditioning.driving is None else _Images(conditioning.driving, least),
        )
        window_key = {
            "inputs": inputs.shas,
            # Memory mode, kernel and compilation change speed, not the picture: a job that ran
            # out of memory resumes in a leaner mode.
            "settings": {
                k: v
                for k, v in req.to_json()["settings"].items()
                if k not in ("output_fps", "memory_mode", "attention", "compile")
            },
            # The cached label is left out: cached keypoints are the estimator's own.
            "estimator": conditioning.estimator.removesuffix(CACHED_LABEL),
            "model": model.identity,
            **({"cast": cast_key} if cast_key else {}),
        }
        store = WindowStore(self.work_dir / key_hash(window_key), window_key)
        windows = engine.count_windows(shot.frame_count, s)
        progress.start_windows(windows, store.finished(windows), s.steps)
        return engine.generate(
            model, engine.inputs(shot, s), store, progress.on_step, len(cond.sources)
        ), store

    def write_result(
        self,
        job_id: str,
        engine_name: str,
        req: JobRequest,
        inputs: JobInputs,
        model: PreparedModel,
        conditioning: JobConditioning,
        generated: Generated,
        progress: JobProgress,
        timings: dict[str, float],
        thumbnail: Path,
    ) -> dict[str, Any]:
        """Frames in clip order at the output rate, conditioning frames, keypoints and job.json,
        into a partial folder renamed into place when complete."""
        progress.report(stage="writing", message="Writing frames", progress=0.92)
        t0 = time.perf_counter()
        s, clip, saved = req.settings, inputs.clip, inputs.saved
        src_count, src_fps = (
            (clip.frame_count, clip.fps) if clip else (len(saved["frames"]), float(saved["fps"]))
        )
        fps = s.output_fps or src_fps
        order = output_frame_sources(src_count, src_fps, len(conditioning.cond.sources), fps, model.fps)
        result = partial_result_dir(inputs.output_parent, job_id)
        try:
            write_frames(
                result,
                generated.frames,
                order,
                conditioning.cond,
                conditioning.keypoints_text,
                progress.cancel_event,
            )
            if write_performer_thumbnail(result, conditioning, s.person) is None:
                kept = thumbnail / PERFORMER_THUMBNAIL
                if conditioning.keypoints_text and kept.is_file():
                    shutil.copyfile(kept, result / PERFORMER_THUMBNAIL)
            timings["writing"] = time.perf_counter() - t0
            record = JobRecord(
                job_id, engine_name, req, inputs, model, conditioning, generated, order, fps, timings
            )
            (result / "job.json").write_text(json.dumps(job_json(record), indent=2, ensure_ascii=False))
            result = publish_result(result, req.name, job_id)
        except BaseException:
            shutil.rmtree(result, ignore_errors=True)
            raise
        return {"result_dir": str(result), "frame_count": len(order), "fps": fps, "timings": timings}


class _Images(Sequence):
    """Conditioning frames as PIL images, made when read; at least ``least`` long (the last
    frame repeats)."""

    def __init__(self, frames: Sequence[np.ndarray], least: int, mode: str | None = None) -> None:
        self._frames, self._least, self._mode = frames, least, mode

    def __len__(self) -> int:
        return max(len(self._frames), self._least)

    def __getitem__(self, i):  # type: ignore[override]
        from PIL import Image

        return Image.fromarray(self._frames[min(i, len(self._frames) - 1)], self._mode)
