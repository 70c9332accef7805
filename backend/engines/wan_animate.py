"""Wan2.2-Animate (Wan-AI/Wan2.2-Animate-14B-Diffusers) as an Engine: driven by a drawn
skeleton and face crops, animate and replace modes, the relighting LoRA in replace mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model import memory_plan
from ..model.attention import resolve_attention
from ..model.lora_adapters import LoraSpec
from ..model.model_store import LoadOptions, ModelStore, model_dir_problem
from ..protocol import JobSettings, RequestError
from .engine import DEFAULT_PROMPT, Generated, PreparedModel, ShotFrames, StepHook

RELIGHT_FILE = "relighting_lora.ckpt"  # where the official repository (and `download`) puts it


class WanAnimateEngine:
    name = "wan2.2-animate"

    def __init__(self, models: ModelStore, model_dir: Path) -> None:
        self.models = models
        self.model_dir = Path(model_dir)

    def model_problem(self, model_dir: Path | None = None) -> str | None:
        return model_dir_problem(model_dir or self.model_dir)

    def count_windows(self, n_frames: int, settings: JobSettings) -> int:
        from ..generation.window_plan import count_windows

        return count_windows(n_frames, settings.segment_frames, settings.overlap)

    def inputs(self, shot: ShotFrames, settings: JobSettings) -> Any:
        """The window loop's inputs: the skeleton, the face crops and, in replace mode, the
        plate and the mask."""
        from ..generation.window_loop import WindowInputs

        s = settings
        return WindowInputs(
            image=shot.reference,
            pose=shot.pose,
            face=shot.face,
            background=shot.background,
            mask=shot.mask,
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
            sampler=s.sampler,
        )

    def prepare(self, settings: JobSettings, report: Callable[..., None]) -> PreparedModel:
        """Load (or keep) the pipeline in the memory mode that fits, with this job's kernel and LoRAs."""
        s = settings
        need = memory_plan.needs(
            memory_plan.model_sizes(self.model_dir), s.width, s.height, s.segment_frames, s.fp8
        )
        available = self.models.available_bytes()
        unified = self.models.device() == "mps"
        memory_mode = memory_plan.resolve(s.memory_mode, need, available, self.models.parallel, unified)
        report(stage="loading_model", message=f"Loading the model ({memory_mode})", progress=0.01)
        model, loaded_now = self.models.get(self.model_dir, LoadOptions(memory_mode, s.fp8, s.compile))
        cuda = model.device.startswith("cuda")
        attention = resolve_attention(s.attention, cuda, self.models.parallel)
        loras = [LoraSpec(x["path"], float(x.get("strength", 1.0))) for x in s.loras]
        relight = self._relight_lora(s)
        if relight is not None:
            loras.append(relight)
        self.models.set_up_for_job(model, attention, loras)
        gb = {k: round(v / memory_plan.GIB, 2) for k, v in need.items()}
        return PreparedModel(
            handle=_Loaded(model, need, available or 0, memory_mode),
            device=model.device,
            tiny=model.tiny,
            face_size=int(model.pipe.transformer.config.motion_encoder_size),
            needs_pose=True,
            identity=[model.model_id, model.revision, model.dtype, model.device, model.tiny],
            report={
                "model": {
                    "id": model.model_id,
                    "revision": model.revision,
                    "device": model.device,
                    "dtype": model.dtype,
                },
                "model_load_s": model.load_seconds if loaded_now else 0.0,
                "memory_mode": memory_mode,
                "memory_estimate_gb": gb,
                "attention": attention,
                "fp8": s.fp8,
                "compile": s.compile,
                "transformer_weight_bytes": model.weight_bytes,
                "transformer_block_weight_bytes": model.block_weight_bytes,
                "step_cache": s.step_cache,
                # "dpm++": the official generate's default sampler; "unipc": its command line's.
                "sampler": s.sampler,
                "loras": model.setup.lora_reports,
                "relighting": self._relight_report(s, relight),
            },
        )

    def generate(self, prepared: PreparedModel, inputs, store, on_step: StepHook, n_frames: int) -> Generated:
        import torch

        from ..generation.window_loop import assemble, generate_windows

        loaded: _Loaded = prepared.handle
        try:
            with torch.inference_mode():
                plan, wt = generate_windows(loaded.model.pipe, inputs, store, on_step)
        except torch.OutOfMemoryError as exc:
            # Finished windows are saved: the advice is to resubmit, which resumes after them.
            raise RequestError(
                memory_plan.too_big_message(
                    loaded.need,
                    loaded.available,
                    loaded.memory_mode,
                    memory_plan.allowed_modes(self.models.parallel),
                )
                + " Submitting the job again resumes after its last finished window."
            ) from exc
        return Generated(
            # A clip shorter than the overlap was padded with its last frame; those go.
            frames=assemble(store, plan, n_frames),
            windows=len(plan),
            timings={"encoding": wt.encode_s, "denoising": wt.denoise_s, "decoding": wt.decode_s},
            report={
                "skipped_steps": wt.skipped_steps,
                "colour_gains": wt.colour_gains,
                "resumed_windows": wt.resumed_windows,
            },
        )

    def _relight_lora(self, settings: JobSettings) -> LoraSpec | None:
        """Replace mode's relighting LoRA, when asked for and there; None otherwise."""
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

    @staticmethod
    def _relight_report(s: JobSettings, relight: LoraSpec | None) -> dict | str:
        if relight is not None:
            return {"file": Path(relight.path).name, "strength": relight.strength}
        if s.mode != "replace" or s.relight_strength <= 0:
            return "off"
        return f"not used: {RELIGHT_FILE} is not in the model folder (python -m backend download)"


class _Loaded:
    """The loaded pipeline with the memory figures its out-of-memory advice quotes."""

    def __init__(self, model, need: dict[str, int], available: int, memory_mode: str) -> None:
        self.model, self.need, self.available, self.memory_mode = model, need, available, memory_mode
