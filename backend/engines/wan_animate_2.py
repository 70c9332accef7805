"""Wan-Animate-2 (Wan-AI/Wan2.2-Animate-2-14B-Diffusers) as an Engine: driven by the clip's own
frames (no skeleton, no face crops), a prompt, 24 fps, 81-frame segments that condition on the
previous segment's last decoded frames; base (classifier-free guidance) and distilled (few steps,
no guidance).

diffusers runs the whole segment loop inside one block; here the pipeline's own blocks run one
segment at a time, so each finished segment is saved for a resume, progress is reported per step
and a cancel stops within one step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..generation.colour_match import match_colours
from ..model import memory_plan, model_folder
from ..model.animate2_layout import ENGINE_FOLDERS
from ..model.model_folder import folder_source, is_tiny_model
from ..protocol import ENGINE_FEATURES, ENGINE_LABELS, JobSettings, RequestError
from .engine import DEFAULT_PROMPT, Generated, PreparedModel, ShotFrames, StepHook

PIPELINE_CLASSES = {
    "wan-animate-2": "WanAnimate2ModularPipeline",
    "wan-animate-2-distilled": "WanAnimate2DistilledModularPipeline",
}
INDEX_FILE = "modular_model_index.json"
PARTS = ("transformer", "vae", "text_encoder", "tokenizer", "image_encoder", "scheduler")


def engine_folder(model_dir: Path, engine: str) -> Path:
    return Path(model_dir) / ENGINE_FOLDERS[engine]


def folder_problem(folder: Path, engine: str) -> str | None:
    fix = (
        f"Run `python -m backend download --engine {engine}` (it puts the weights in the model folder's "
        f"{ENGINE_FOLDERS[engine]} sub-folder), or choose another engine."
    )
    configs = [INDEX_FILE, "transformer/config.json", "vae/config.json"]
    return model_folder.folder_problem(
        folder, f"The {ENGINE_LABELS[engine]} folder", (INDEX_FILE, *PARTS), configs, fix
    )


@dataclass
class DrivingInputs:
    """What Wan-Animate-2 reads: the character, the clip's own frames and the sampling settings
    it honours (ENGINE_FEATURES says which it ignores)."""

    image: Any  # PIL image, the character at the output size
    driving: Sequence  # PIL frames of the clip at the model's rate
    prompt: str
    width: int
    height: int
    segment: int
    overlap: int
    steps: int
    guidance_scale: float
    seed: int
    colour_match: bool = True


@dataclass
class _Warm:
    """The loaded pipeline, kept between jobs while the folder, device and memory mode stay."""

    pipe: Any
    key: tuple
    device: str
    dtype: str
    tiny: bool
    model_id: str
    revision: str
    load_seconds: float
    weight_bytes: int


class WanAnimate2Engine:
    def __init__(self, name: str, models, model_dir: Path) -> None:
        self.name = name
        self.models = models  # the backend's ModelStore: its device choice and memory figures
        self.model_dir = Path(model_dir)
        self.features = ENGINE_FEATURES[name]
        self._warm: _Warm | None = None
        self._lock = threading.Lock()

    def model_problem(self, model_dir: Path | None = None) -> str | None:
        return folder_problem(engine_folder(model_dir or self.model_dir, self.name), self.name)

    def count_windows(self, n_frames: int, settings: JobSettings) -> int:
        return len(segment_starts(n_frames, settings.segment_frames, settings.overlap))

    def inputs(self, shot: ShotFrames, settings: JobSettings) -> DrivingInputs:
        s = settings
        if shot.driving is None:
            raise RequestError(
                f"{ENGINE_LABELS[self.name]} is driven by the clip's frames: give a reference clip."
            )
        return DrivingInputs(
            image=shot.reference,
            driving=shot.driving,
            prompt=s.prompt or DEFAULT_PROMPT,
            width=s.width,
            height=s.height,
            segment=s.segment_frames,
            overlap=s.overlap,
            steps=s.steps,
            guidance_scale=s.guidance_scale,
            seed=int(s.seed),
            colour_match=s.colour_match,
        )

    def prepare(self, settings: JobSettings, report: Callable[..., None]) -> PreparedModel:
        s = settings
        device = self.models.device()
        available = self.models.available_bytes()
        memory_mode = _memory_mode(s, device, available, engine_folder(self.model_dir, self.name))
        report(
            stage="loading_model",
            message=f"Loading {ENGINE_LABELS[self.name]} ({memory_mode})",
            progress=0.01,
        )
        warm, loaded_now = self._load(device, memory_mode, s.compile)
        return PreparedModel(
            handle=warm,
            device=warm.device,
            tiny=warm.tiny,
            face_size=0,
            needs_pose=False,
            fit_driving=driving_frame,
            # DRIVING_FIT: how the driving frames were fitted; a job resumed across a change of
            # that rule starts afresh rather than join windows made from differently fitted frames.
            identity=[
                self.name,
                warm.model_id,
                warm.revision,
                warm.dtype,
                warm.device,
                warm.tiny,
                DRIVING_FIT,
            ],
            report={
                "model": {
                    "id": warm.model_id,
                    "revision": warm.revision,
                    "device": warm.device,
                    "dtype": warm.dtype,
                },
                "model_load_s": warm.load_seconds if loaded_now else 0.0,
                "memory_mode": memory_mode,
                "attention": "flex" + (" (compiled)" if s.compile else ""),
                "compile": s.compile,
                "transformer_weight_bytes": warm.weight_bytes,
            },
            fps=float(self.features["fps"]),
        )

    def _load(self, device: str, memory_mode: str, compile_blocks: bool) -> tuple[_Warm, bool]:
        folder = engine_folder(self.model_dir, self.name).resolve()
        key = (str(folder), device, memory_mode, compile_blocks)
        with self._lock:
            if self._warm is not None and self._warm.key == key:
                return self._warm, False
            problem = folder_problem(folder, self.name)
            if problem:
                raise RequestError(problem)
            self._warm = None
            t0 = time.perf_counter()
            import diffusers
            import torch

            dtype = "bfloat16" if device.startswith("cuda") else "float32"
            cls = getattr(diffusers, PIPELINE_CLASSES[self.name])
            try:
                pipe = cls.from_pretrained(folder)
                pipe.load_components(torch_dtype=getattr(torch, dtype))
            except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
                raise RequestError(
                    f"The {ENGINE_LABELS[self.name]} model in {folder} failed to load ({type(exc).__name__}: "
                    f"{str(exc)[:400]}). Run `python -m backend download --engine {self.name}` again (it "
                    "resumes and replaces damaged files)."
                ) from exc
            _place(pipe, memory_mode, torch.device(device))
            if compile_blocks:
                # The generation self-attention runs on flex attention, which only stays in memory
                # at video sizes when compiled; one graph serves every block.
                pipe.transformer.compile_repeated_blocks(fullgraph=False)
            source = folder_source(folder)
            tiny = is_tiny_model(folder)
            self._warm = _Warm(
                pipe=pipe,
                key=key,
                device=device,
                dtype=dtype,
                tiny=tiny,
                model_id=source.get("repo_id", f"tiny-random-{self.name}" if tiny else folder.name),
                revision=source.get("revision", "local"),
                load_seconds=time.perf_counter() - t0,
                weight_bytes=sum(p.numel() * p.element_size() for p in pipe.transformer.parameters()),
            )
            return self._warm, True

    def generate(self, prepared: PreparedModel, inputs, store, on_step: StepHook, n_frames: int) -> Generated:
        import torch

        warm: _Warm = prepared.handle
        try:
            with torch.inference_mode():
                return _Segments(warm.pipe, inputs, store, on_step, n_frames, self.features).run()
        except torch.OutOfMemoryError as exc:
            raise RequestError(
                f"{ENGINE_LABELS[self.name]} ran out of GPU memory at {inputs.width}x{inputs.height}. Choose the "
                "group_offload memory mode or a smaller size. Submitting the job again resumes after its last "
                "finished segment."
            ) from exc


def segment_starts(n_frames: int, segment: int, overlap: int) -> list[int]:
    """The first driving frame of each segment: each one advances ``segment - overlap`` frames,
    the last one padded (mirrored back) to a whole segment."""
    step = segment - overlap
    count = max(1, -(-(max(n_frames, segment) - overlap) // step))
    return [k * step for k in range(count)]


DRIVING_FIT = "pipeline-letterbox"


def driving_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A clip frame (RGB uint8) letterboxed into width x height as Wan-Animate-2's own video
    processor letterboxes its driving video (sizes and placement floored, bilinear, black bars),
    so the frames stored at the output size are the ones the pipeline would make from the clip."""
    from PIL import Image

    h, w = frame.shape[:2]
    # At least a pixel: a sliver of a clip (a 1-pixel-high strip) still makes a frame.
    fw = width if width / height < w / h else max(1, w * height // h)
    fh = height if width / height >= w / h else max(1, h * width // w)
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - fh) // 2, (width - fw) // 2
    out[top : top + fh, left : left + fw] = np.asarray(
        Image.fromarray(frame).resize((fw, fh), Image.Resampling.BILINEAR)
    )
    return out


def padded_frame(i: int, n_frames: int) -> int:
    """The driving frame at padded position ``i``: past the end the clip plays back in reverse
    from its last frame, so the motion has no jump."""
    if i < n_frames:
        return i
    back = i - n_frames + 1
    return max(n_frames - back, 0) if n_frames > 1 else 0


class _Segments:
    """One job's segment loop over the pipeline's own blocks."""

    def __init__(self, pipe, inputs, store, on_step: StepHook, n_frames: int, features: dict) -> None:
        self.pipe, self.inputs, self.store, self.on_step = pipe, inputs, store, on_step
        self.n_frames = n_frames
        self.features = features
        self.segment, self.overlap = inputs.segment, inputs.overlap
        self.starts = segment_starts(n_frames, self.segment, self.overlap)
        self.colour_gains: list[list[float] | None] = []

    def run(self) -> Generated:
        import torch

        from ..generation.window_loop import to_uint8  # torch, loaded with the model

        n = len(self.starts)
        resumed = self.store.finished(n)
        timings = {"encoding": 0.0, "denoising": 0.0, "decoding": 0.0}
        if resumed < n:
            t0 = time.perf_counter()
            state = self._encode()
            timings["encoding"] += time.perf_counter() - t0
            loop = self.pipe.blocks.sub_blocks["denoise"].sub_blocks["denoise"]
            blocks = loop.sub_blocks
            tail = self.store.tail(resumed - 1) if resumed else None
            for k in range(resumed, n):
                bs = loop.get_block_state(state)
                bs.generator = torch.Generator("cpu").manual_seed((self.inputs.seed + k) % 2**63)
                bs.out_frames = None if tail is None else tail.to(self.pipe._execution_device)
                bs.segment_frames = []
                # This segment's driving frames only: a long clip never sits in memory as a whole.
                bs.driving_video_pixels = self._pixels(self.starts[k])
                t0 = time.perf_counter()
                _, bs = blocks["vae_encoder"](self.pipe, bs, k=0)
                for name in ("prev_frames", "prepare", "scheduler_reset", "ref_extract"):
                    _, bs = blocks[name](self.pipe, bs, k=k)
                timings["encoding"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                with _count_steps(self.pipe.scheduler, lambda i, k=k: self.on_step(k + 1, n, i, False)):
                    _, bs = blocks["denoise_inner"](self.pipe, bs, k=k)
                timings["denoising"] += time.perf_counter() - t0
                self.on_step(k + 1, n, self.inputs.steps, True)
                t0 = time.perf_counter()
                # Decoded whole (k=0 keeps the block from cutting the conditioning frames off):
                # those re-generated frames are what the colour match compares with the tail.
                _, bs = blocks["decode"](self.pipe, bs, k=0)
                decoded = bs.segment_frames[-1]
                if k > 0:
                    decoded = self._match(decoded[:, :, : self.overlap], decoded[:, :, self.overlap :], tail)
                tail = decoded[:, :, -self.overlap :].clone()
                self.store.save(k, to_uint8(decoded), tail)
                timings["decoding"] += time.perf_counter() - t0
        frames = self._assemble(n)
        return Generated(
            frames=frames,
            windows=n,
            timings=timings,
            report={
                "resumed_windows": resumed,
                "segment_frames": self.segment,
                "conditioning_frames": self.overlap,
                "colour_gains": self.colour_gains,
            },
        )

    def _match(self, regenerated, kept, tail):
        """The segment's colours brought back to the previous (already matched) segment's
        through the frames that re-generate its tail, as Wan2.2-Animate's windows are; the
        matched tail conditions the next segment, so every segment chains back to the first."""
        if not self.inputs.colour_match:
            return kept
        from ..generation.window_loop import apply_colour, unit  # torch, loaded with the model

        found = match_colours(unit(tail.to(regenerated)), unit(regenerated))
        if found is None:  # the conditioning frames were not followed: nothing to match against
            self.colour_gains.append(None)
            return kept
        gain, offset, _score = found
        self.colour_gains.append([round(float(g), 4) for g in gain])
        return apply_colour(kept, gain, offset)

    def _encode(self):
        """Prompt, reference image and the driving video's first frame through the pipeline's
        encoder blocks; the output size is the job's (the character image is already fitted to it)."""
        import torch
        from diffusers.modular_pipelines import PipelineState

        pipe, x = self.pipe, self.inputs
        top = pipe.blocks.sub_blocks
        state = PipelineState()
        for param in pipe.blocks.inputs:
            if param.name:
                state.set(param.name, param.default, param.kwargs_type)
        values = {
            "prompt": x.prompt,
            "negative_prompt": None,
            "height": x.height,
            "width": x.width,
            "segment_frame_length": self.segment,
            "prev_segment_conditioning_frames": self.overlap,
            "num_inference_steps": x.steps,
            "fps": int(self.features["fps"]),
            "image": x.image,
            "image_pixels": pipe.image_processor.preprocess(
                x.image, height=x.height, width=x.width, resize_mode="fill"
            ).to(pipe._execution_device, dtype=torch.float32),
            "crop_region": (0, 0, x.height, x.width),
            "driving_video_pixels": self._pixels(0, 1),
            "effective_segment": self.segment - self.overlap,
            "num_segments": len(self.starts),
        }
        for name, value in values.items():
            state.set(name, value)
        # The distilled model samples without guidance whatever the request says.
        pipe.guider.guidance_scale = float(x.guidance_scale) if self.features["guidance"] else 1.0
        _, state = top["text_encoder"](pipe, state)
        _, state = top["image_encoder"].sub_blocks["encode"](pipe, state)
        _, state = top["video_encoder"].sub_blocks["encode"](pipe, state)
        _, state = top["vae_encoder"](pipe, state)
        _, state = pipe.blocks.sub_blocks["denoise"].sub_blocks["prepare_segments"](pipe, state)
        # The geometry step only checks the driving pixels' size; each segment brings its own.
        return state

    def _pixels(self, start: int, count: int | None = None):
        import torch

        frames = [
            self.inputs.driving[padded_frame(start + i, self.n_frames)] for i in range(count or self.segment)
        ]
        video = self.pipe.video_processor.preprocess_video(
            frames, height=self.inputs.height, width=self.inputs.width, resize_mode="fill"
        )
        return video.to(self.pipe._execution_device, dtype=torch.float32)

    def _assemble(self, n: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for k in range(n):
            out.extend(np.asarray(self.store.frames(k)))
        return out[: self.n_frames]


class _count_steps:  # noqa: N801 - used as a context manager
    """Reports each finished denoising step (and so checks for a cancel) from the scheduler's
    step, the one call the pipeline's inner loop makes once per step."""

    def __init__(self, scheduler, hook: Callable[[int], None]) -> None:
        self.scheduler, self.hook, self.done = scheduler, hook, 0

    def __enter__(self) -> None:
        original = type(self.scheduler).step.__get__(self.scheduler)

        def step(*args, **kwargs):
            out = original(*args, **kwargs)
            self.done += 1
            self.hook(self.done)
            return out

        self.scheduler.step = step

    def __exit__(self, *exc: object) -> None:
        del self.scheduler.step


def _memory_mode(s: JobSettings, device: str, available: int | None, folder: Path) -> str:
    """For "auto" on a GPU, the memory plan's choice (the weights, activations and the reference
    K/V cache at this size); streaming the blocks (as diffusers' own Animate-2 documentation runs it
    even on 80 GB at the default size) when nothing else fits."""
    if s.memory_mode in memory_plan.ANIMATE2_MODES:
        return s.memory_mode
    if s.memory_mode != "auto":
        return "group_offload"
    if not device.startswith("cuda") or available is None:
        return "resident"
    sizes = memory_plan.model_sizes(folder)
    need = memory_plan.animate2_needs(sizes, s.width, s.height, s.segment_frames)
    return memory_plan.choose(need, available, memory_plan.ANIMATE2_MODES) or "group_offload"


def _place(pipe, memory_mode: str, device) -> None:
    import torch

    if memory_mode == "resident":
        pipe.to(device)
        return
    pipe.vae.enable_tiling()
    for name in ("text_encoder", "image_encoder", "vae"):
        getattr(pipe, name).to(device)
    pipe.transformer.enable_group_offload(
        onload_device=device,
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=1,
        use_stream=device.type == "cuda",
    )
