"""One job, start to finish: load (once) -> preprocess -> denoise window by window ->
decode -> write frames and job.json into a new folder. Progress goes to ``report``;
``cancel`` is checked on every preprocessed frame and every denoising step."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .api_types import JobRequest, RequestError
from .model_store import ModelStore
from .preprocess.extract import KEYPOINT_DECIMALS
from .window_plan import count_windows

Report = Callable[..., None]
DEFAULT_PROMPT = "视频中的人在做动作"  # the official default; custom prompts are discouraged upstream


class Cancelled(Exception):
    pass


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def key_hash(key: dict[str, Any]) -> str:
    """A short stable name for a JSON-able key (window store and keypoint cache folders)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


PARTIAL_SUFFIX = ".partial"


def partial_result_dir(parent: Path, job_id: str) -> Path:
    """Where a job writes its result until it is complete (a hidden folder, renamed at the end)."""
    parent.mkdir(parents=True, exist_ok=True)
    partial = parent / f".{job_id}{PARTIAL_SUFFIX}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    return partial


def publish_result(partial: Path, name: str, job_id: str) -> Path:
    """Rename a complete result to a name no earlier job used: nothing existing is written over."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "shot"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent = partial.parent
    for n in range(1000):
        candidate = parent / (f"{safe}_{stamp}_{job_id[:8]}" + (f"_{n}" if n else ""))
        if candidate.exists():
            continue
        try:
            # A rename onto an existing empty folder would succeed on POSIX: claim the name first.
            candidate.mkdir()
            candidate.rmdir()
            partial.rename(candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            if candidate.exists():
                continue
            raise OSError(f"could not rename the finished result to {candidate}: {exc}") from exc
    raise OSError(f"could not find a free result folder name in {parent}")


def free_bytes_needed(frames: int, width: int, height: int, conditioning_frames: int) -> int:
    """A generous estimate of a job's disk use: PNG output frames (incompressible at worst), its
    conditioning frames (pose, face, background, mask) and the finished windows kept for a resume."""
    frame = width * height * 3
    return int(frames * frame * 1.1 + conditioning_frames * (frame * 2.5 + 512 * 512 * 3)) + (64 << 20)


class JobRunner:
    def __init__(
        self,
        models: ModelStore,
        model_dir: Path,
        default_output: Path,
        estimator_factory=None,
        work_dir: Path | None = None,
    ) -> None:
        self.models = models
        self.model_dir = Path(model_dir)
        self.default_output = Path(default_output)
        # Finished windows of unfinished jobs live here until the job completes.
        self.work_dir = Path(work_dir) if work_dir else self.default_output.parent / "windows"
        self.cache_dir = self.work_dir.parent / "keypoints-cache"
        self._estimator_factory = estimator_factory
        # Results a crash left half-written (one backend per data folder, so none is in use).
        for stale in self.default_output.glob(f".*{PARTIAL_SUFFIX}") if self.default_output.is_dir() else ():
            shutil.rmtree(stale, ignore_errors=True)

    def _relight_lora(self, settings):
        """Replace mode's relighting LoRA, when asked for and there; None otherwise."""
        from .speed_options import LoraSpec

        if settings.mode != "replace" or settings.relight_strength <= 0:
            return None
        if settings.relight_lora:
            path = Path(settings.relight_lora)
            if not path.is_file():
                raise RequestError(f"The relighting LoRA {path} was not found.")
        else:
            path = self.model_dir / RELIGHT_FILE
            if not path.is_file():
                return None  # job.json says it was not used, and why
        return LoraSpec(str(path), float(settings.relight_strength))

    def _character_pose(self, settings, cuda: bool, image: np.ndarray) -> np.ndarray | None:
        """The character's keypoints on the fitted character image, when retargeting applies."""
        if settings.mode != "animate" or settings.retarget == "off":
            return None
        with self._estimator(settings, cuda, still=True) as estimator:
            kps = estimator.estimate(image)
        return kps if kps[:, 2].max() > 0 else None

    def _estimator(self, settings, cuda: bool, still: bool = False):
        if self._estimator_factory is not None:
            return self._estimator_factory()
        from .preprocess import estimator_onnx

        checkpoint = self.model_dir / "process_checkpoint"
        choice = settings.estimator
        if choice == "auto":
            choice = "vitpose" if estimator_onnx.checkpoint_ready(checkpoint) else "mediapipe"
        if choice == "vitpose":
            pick = tuple(settings.person) if settings.person and not still else None
            try:
                return estimator_onnx.OnnxPoseEstimator(checkpoint, cuda=cuda, pick=pick)
            except RuntimeError as exc:
                raise RequestError(str(exc)) from exc
        from .preprocess.estimator_mediapipe import MediapipeEstimator

        pick = tuple(settings.person) if settings.person and not still else None
        return MediapipeEstimator(static_images=still, pick=pick)

    def run(
        self, job_id: str, req: JobRequest, inputs: dict[str, Path], report: Report, cancel: threading.Event
    ) -> dict[str, Any]:
        # Conditioning frames stream to disk here; a finished job moves them into its result,
        # anything left (a failure, a cancel) goes.
        frames_dir = self.work_dir.parent / "conditioning" / job_id
        shutil.rmtree(frames_dir, ignore_errors=True)
        try:
            return self._run(job_id, req, inputs, report, cancel, frames_dir)
        finally:
            shutil.rmtree(frames_dir, ignore_errors=True)

    def _run(
        self,
        job_id: str,
        req: JobRequest,
        inputs: dict[str, Path],
        report: Report,
        cancel: threading.Event,
        frames_dir: Path,
    ) -> dict[str, Any]:
        from .character import fit_character, load_character
        from .preprocess.extract import build_conditioning
        from .preprocess.video_io import MODEL_FPS, output_frame_sources, probe_clip

        s = req.settings
        timings: dict[str, float] = {}

        def check() -> None:
            if cancel.is_set():
                raise Cancelled()

        # Inputs are checked before the model loads so a bad file fails in a second, not a minute.
        from .model_store import check_model_dir

        check_model_dir(self.model_dir)
        character_path, clip_path = inputs["character"], inputs["clip"]
        t0 = time.perf_counter()
        character = load_character(character_path)
        clip = (
            probe_clip(clip_path).view(s.clip_start, s.clip_frames, s.clip_speed)
            if clip_path is not None
            else None
        )
        if s.mode == "replace" and clip is None:
            raise RequestError("replace mode needs a reference clip to put the character into")
        parent = Path(req.output_dir) if req.output_dir else self.default_output
        if clip is not None:
            n_out = round(clip.frame_count * (s.output_fps or clip.fps) / clip.fps)
            check_free_space(
                parent,
                free_bytes_needed(n_out, s.width, s.height, round(clip.frame_count * MODEL_FPS / clip.fps)),
            )
        from .preprocess.video_io import clip_sha256

        shas = {
            k: (clip_sha256(v) if k == "clip" else file_sha256(v)) for k, v in inputs.items() if v is not None
        }
        timings["inputs"] = time.perf_counter() - t0

        from . import memory_plan
        from .model_store import LoadOptions
        from .speed_options import LoraSpec, resolve_attention

        need = memory_plan.needs(
            memory_plan.model_sizes(self.model_dir), s.width, s.height, s.segment_frames, s.fp8
        )
        available = self.models.available_bytes()
        memory_mode = memory_plan.resolve(s.memory_mode, need, available, self.models.parallel)
        report(stage="loading_model", message=f"Loading the model ({memory_mode})", progress=0.01)
        model, loaded_now = self.models.get(self.model_dir, LoadOptions(memory_mode, s.fp8, s.compile))
        timings["model_load"] = model.load_seconds if loaded_now else 0.0
        attention = resolve_attention(s.attention, model.device.startswith("cuda"), self.models.parallel)
        loras = [LoraSpec(x["path"], float(x.get("strength", 1.0))) for x in s.loras]
        relight = self._relight_lora(s)
        if relight is not None:
            loras.append(relight)
        self.models.configure(model, attention, loras)
        pipe = model.pipe
        import torch  # already imported by the model load

        face_size = int(pipe.transformer.config.motion_encoder_size)
        check()

        t0 = time.perf_counter()

        def pre_progress(i: int, n: int, what: str) -> None:
            check()
            frac = (i / n) * 0.5 + (0.5 if what == "face" else 0.0)
            if i == n or i % 5 == 0:
                report(
                    stage="preprocessing",
                    progress=0.02 + 0.13 * frac,
                    message=f"Preprocessing: {what} {i}/{n} frames",
                )

        saved = cached = None  # saved: keypoints the request brought; cached: from the cache
        ref = fit_character(character, s.width, s.height)
        character_kps = (
            self._character_pose(s, model.device.startswith("cuda"), np.asarray(ref))
            if clip is not None
            else None
        )
        if inputs.get("keypoints") is not None:
            try:
                saved = json.loads(Path(inputs["keypoints"]).read_text())
            except (OSError, ValueError) as exc:
                raise RequestError(f"Cannot read the saved keypoints {inputs['keypoints']}: {exc}") from exc
            estimator_name = "reused keypoints" + (
                " with edited guides" if saved["frames"] and "pose_points" in saved["frames"][0] else ""
            )
            if clip is None:
                from .preprocess.extract import conditioning_from_points
                from .preprocess.face_still import face_from_image

                face = face_from_image(inputs.get("face"), face_size)
                estimator_name = "Blender animation" + (
                    ", face from image" if inputs.get("face") else ", neutral face"
                )
                cond = conditioning_from_points(saved, s.width, s.height, face, MODEL_FPS)
            else:
                cond = build_conditioning(
                    clip,
                    None,
                    s.width,
                    s.height,
                    face_size,
                    pre_progress,
                    MODEL_FPS,
                    saved,
                    s.mode == "replace",
                    frames_dir,
                    character_kps,
                )
        else:
            with self._estimator(s, model.device.startswith("cuda")) as estimator:
                name = getattr(estimator, "name", type(estimator).__name__)
                # Detection is the slow part of preprocessing and depends only on the clip's
                # frames and the estimator: a re-run with another seed, step count or size reuses it.
                cache_key = {
                    "clip": shas["clip"],
                    "range": [clip.first, clip.frame_count, clip.fps],
                    "estimator": name,
                    "person": s.person,
                    "format": KEYPOINTS_FORMAT,
                }
                cache_file = self.cache_dir / f"{key_hash(cache_key)}.json"
                cached = _read_json(cache_file)
                cond = build_conditioning(
                    clip,
                    None if cached else estimator,
                    s.width,
                    s.height,
                    face_size,
                    pre_progress,
                    MODEL_FPS,
                    cached,
                    s.mode == "replace",
                    frames_dir,
                    character_kps,
                )
            estimator_name = name + CACHED_LABEL if cached else name
        # Serialised once: the cache (after a fresh detection) and the result keep the same text.
        keypoints_text = json.dumps(_keypoints_json(cond)) if cond.keypoints else None
        if saved is None and cached is None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".part")
            tmp.write_text(keypoints_text)
            tmp.replace(cache_file)
        timings["preprocessing"] = time.perf_counter() - t0
        n_model = len(cond.sources)

        # Read lazily, one window's frames at a time; the pipeline needs more frames than the
        # overlap, so a very short clip holds its last frame.
        least = s.overlap + 1
        pose_imgs = _Images(cond.pose_frames, least)
        face_imgs = _Images(cond.face_frames, least)
        bg_imgs = _Images(cond.background_frames, least) if len(cond.background_frames) else None
        mask_imgs = _Images(cond.mask_frames, least, "L") if len(cond.mask_frames) else None
        from .generate_windows import WindowInputs, WindowStore, assemble, generate_windows

        # Everything that shapes the frames: a re-run that matches resumes, anything else starts over.
        window_key = {
            "inputs": shas,
            # Memory mode, kernel and compilation change speed, not the picture: a job that ran
            # out of memory resumes in a leaner mode.
            "settings": {
                k: v
                for k, v in req.to_json()["settings"].items()
                if k not in ("output_fps", "memory_mode", "attention", "compile")
            },
            # The cached label is left out: cached keypoints are the estimator's own.
            "estimator": estimator_name.removesuffix(CACHED_LABEL),
            "model": [model.model_id, model.revision, model.dtype, model.device, model.tiny],
        }
        windows = count_windows(len(pose_imgs), s.segment_frames, s.overlap)
        store = WindowStore(self.work_dir / key_hash(window_key), window_key)
        resumed = store.finished(windows)
        steps_total = (windows - resumed) * s.steps
        t_pipe = time.perf_counter()
        state = {"done": 0}

        def on_step(window: int, n_windows: int, step: int, decoding: bool) -> None:
            check()
            if not decoding:
                state["done"] += 1
            done = max(state["done"], 1)
            eta = (time.perf_counter() - t_pipe) / done * (steps_total - state["done"])
            report(
                stage="decoding" if decoding else "denoising",
                message=(
                    f"Decoding window {window} of {n_windows}"
                    if decoding
                    else f"Window {window} of {n_windows}, step {step} of {s.steps}"
                )
                + (f" (resumed after window {resumed})" if resumed else ""),
                progress=0.15 + 0.75 * ((resumed * s.steps + state["done"]) / (windows * s.steps)),
                window=window,
                windows=n_windows,
                step=step,
                steps=s.steps,
                eta_s=eta,
            )

        report(
            stage="denoising",
            message=(
                f"Resuming after window {resumed} of {windows} (saved by an earlier run)"
                if resumed
                else f"Window 1 of {windows}, step 0 of {s.steps}"
            ),
            progress=0.15 + 0.75 * resumed / windows,
            window=resumed + 1 if resumed < windows else windows,
            windows=windows,
            step=0,
            steps=s.steps,
        )
        inp = WindowInputs(
            image=ref,
            pose=pose_imgs,
            face=face_imgs,
            background=bg_imgs,
            mask=mask_imgs,
            prompt=s.prompt or DEFAULT_PROMPT,
            width=s.width,
            height=s.height,
            segment=s.segment_frames,
            overlap=s.overlap,
            steps=s.steps,
            mode=s.mode,
            guidance_scale=s.guidance_scale,
            seed=int(s.seed),
            colour_match=s.colour_match,
            step_cache=s.step_cache,
        )
        try:
            with torch.inference_mode():
                plan, wt = generate_windows(pipe, inp, store, on_step)
        except torch.OutOfMemoryError as exc:
            # Finished windows are saved: the advice is to resubmit, which resumes after them.
            raise RequestError(
                memory_plan.too_big_message(
                    need, available or 0, memory_mode, memory_plan.allowed_modes(self.models.parallel)
                )
                + " Submitting the job again resumes after its last finished window."
            ) from exc
        timings["encoding"] = wt.encode_s
        timings["denoising"] = wt.denoise_s
        timings["decoding"] = wt.decode_s
        frames = assemble(store, plan, n_model)  # uint8 frames, read from the window files
        check()

        report(stage="writing", message="Writing frames", progress=0.92)
        t0 = time.perf_counter()
        src_count, src_fps = (
            (clip.frame_count, clip.fps) if clip else (len(saved["frames"]), float(saved["fps"]))
        )
        fps = s.output_fps or src_fps
        order = output_frame_sources(src_count, src_fps, n_model, fps, MODEL_FPS)
        result = partial_result_dir(parent, job_id)
        try:
            _write_frames(result, frames, order, cond, keypoints_text, cancel)
            timings["writing"] = time.perf_counter() - t0
            meta = {
                "job_id": job_id,
                "name": req.name,
                "tiny_random_model": model.tiny,
                "warning": "made by a tiny random test model: not a real Wan-Animate result"
                if model.tiny
                else None,
                "model": {
                    "id": model.model_id,
                    "revision": model.revision,
                    "device": model.device,
                    "dtype": model.dtype,
                },
                "settings": req.to_json()["settings"],
                "seed": s.seed,
                "inputs": {
                    "character": {"path": str(character_path), "sha256": shas["character"]},
                    "clip": {
                        "path": str(clip_path),
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
                        "path": str(inputs["keypoints"]),
                        "fps": src_fps,
                        "frame_count": src_count,
                    }
                    if clip is None
                    else None,
                    "face": {"path": str(inputs["face"])} if inputs.get("face") else None,
                },
                "estimator": estimator_name,
                "model_frames": n_model,
                "memory_mode": memory_mode,
                "memory_estimate_gb": {k: round(v / memory_plan.GIB, 2) for k, v in need.items()},
                "attention": attention,
                "fp8": s.fp8,
                "compile": s.compile,
                "transformer_weight_bytes": model.weight_bytes,
                "transformer_block_weight_bytes": model.block_weight_bytes,
                "step_cache": s.step_cache,
                "skipped_steps": wt.skipped_steps,
                "loras": model.setup.lora_reports,
                "relighting": (
                    {"file": Path(relight.path).name, "strength": relight.strength}
                    if relight is not None
                    else "off"
                    if s.mode != "replace" or s.relight_strength <= 0
                    else f"not used: {RELIGHT_FILE} is not in the model folder (python -m backend download)"
                ),
                "retarget": _retarget_report(s, clip, character_kps, cond),
                "colour_match": s.colour_match,
                "colour_gains": wt.colour_gains,
                "resumed_windows": wt.resumed_windows,
                "model_fps": MODEL_FPS,
                "windows": windows,
                "frame_count": len(order),
                "output_to_model": order,
                "fps": fps,
                "frame_pattern": "frame_{:06d}.png",
                "timings_s": timings,
                "versions": _versions(),
            }
            (result / "job.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
            result = publish_result(result, req.name, job_id)
        except BaseException:
            shutil.rmtree(result, ignore_errors=True)
            raise
        store.remove()  # the frames are in the result now; a re-run starts afresh
        return {"result_dir": str(result), "frame_count": len(order), "fps": fps, "timings": timings}


def _write_frames(
    result: Path,
    frames: list[np.ndarray],
    order: list[int],
    cond,
    keypoints_text: str | None,
    cancel: threading.Event,
) -> None:
    from .preprocess.frame_folder import FrameFolder

    out = FrameFolder(result, "frame")  # frame_000001.png ...: the one PNG writer, every write checked
    for src in order:
        if cancel.is_set():
            raise Cancelled()
        out.append(frames[src])

    for sub, images in (
        ("pose", cond.pose_frames),
        ("face", cond.face_frames),
        ("background", cond.background_frames),
        ("mask", cond.mask_frames),
    ):
        if not len(images):
            continue
        if isinstance(images, FrameFolder):
            images.move_to(result / sub)  # already the result's files
            continue
        folder = FrameFolder(result / sub, sub)  # the same files, written now
        for img in images:
            folder.append(img)
    if keypoints_text is not None:  # None: driven by pose points alone, no detections to save
        (result / "keypoints.json").write_text(keypoints_text)


def check_free_space(folder: Path, need: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise RequestError(
            f"The output folder {folder} has {free / 1e9:.1f} GB free; this job needs about {need / 1e9:.1f} GB. "
            "Free some space, pick another output folder, or make a shorter or smaller shot."
        )


def _retarget_report(s, clip, character_kps, cond) -> dict[str, Any]:
    if cond.retarget_ratios:
        from .preprocess.keypoint_spec import BODY_NAMES

        ratios = {BODY_NAMES[b]: round(r, 3) for b, r in sorted(cond.retarget_ratios.items())}
        return {"applied": True, "length_ratio_by_bone_end": ratios}
    if s.mode != "animate" or s.retarget == "off" or clip is None:
        return {"applied": False, "why": "off" if s.retarget == "off" else "not used in this mode"}
    why = "the character's pose was not found in its image"
    if character_kps is not None:
        why = "the character image shows too little of a body (shoulders, arms, hips)"
    return {"applied": False, "why": why}


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


KEYPOINTS_FORMAT = "coco-wholebody-133"
RELIGHT_FILE = "relighting_lora.ckpt"  # where the official repository (and `download`) puts it
CACHED_LABEL = " (cached keypoints)"


def _keypoints_json(cond) -> dict[str, Any]:
    return {
        "format": KEYPOINTS_FORMAT,
        "fields": ["x", "y", "confidence"],
        "frames": [
            {
                "model_frame": i,
                "clip_frame": src,
                "keypoints": np.round(k, KEYPOINT_DECIMALS).tolist(),
                "face_box": list(cond.face_boxes[i]),
                "face_box_bridged": cond.face_filled[i],
                **({"person_box": cond.person_boxes[i]} if cond.person_boxes else {}),
            }
            for i, (src, k) in enumerate(zip(cond.sources, cond.keypoints, strict=True))
        ],
    }


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent or half-written: detect again


def _versions() -> dict[str, str]:
    import diffusers
    import torch

    from . import __version__

    return {"backend": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__}


def resolve_inputs(req: JobRequest, uploads_dir: Path) -> dict[str, Path]:
    def one(path: str | None, upload: str | None, what: str) -> Path:
        if upload:
            p = uploads_dir / Path(upload).name
            if not p.is_file():
                raise RequestError(f"upload {upload!r} for the {what} is unknown; upload it again")
            return p
        assert path is not None
        return Path(path)

    out = {
        "character": one(req.character_path, req.character_upload, "character"),
        "clip": one(req.clip_path, req.clip_upload, "reference clip")
        if (req.clip_path or req.clip_upload)
        else None,
    }
    if req.keypoints_path or req.keypoints_upload:
        out["keypoints"] = one(req.keypoints_path, req.keypoints_upload, "saved keypoints")
    if req.face_path or req.face_upload:
        out["face"] = one(req.face_path, req.face_upload, "face image")
    return out
