"""Loading the Wan-Animate pipeline once per backend and keeping it warm.

The same code path loads the real Wan-AI/Wan2.2-Animate-14B-Diffusers folder and
the tiny random model that tests use."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol import MODEL_FOLDER_PARTS, RequestError
from .lora_adapters import LoraSpec, TransformerSetup, set_up_transformer
from .model_folder import folder_problem, folder_source, is_tiny_model

REQUIRED_PARTS = MODEL_FOLDER_PARTS
HF_REPO_ID = "Wan-AI/Wan2.2-Animate-14B-Diffusers"


@dataclass(frozen=True)
class LoadOptions:
    """What is fixed when the model loads; a job asking for other values reloads it."""

    memory_mode: str = "resident"  # resolved, never "auto"
    fp8: bool = False
    compile: bool = False


@dataclass
class LoadedModel:
    pipe: object
    model_dir: Path
    device: str
    dtype: str
    tiny: bool
    model_id: str
    revision: str
    load_seconds: float
    options: LoadOptions = field(default_factory=LoadOptions)
    weight_bytes: int = 0  # the transformer's weights as held
    block_weight_bytes: int = 0  # of its 40 blocks, which fp8 stores in one byte per weight
    setup: TransformerSetup = field(default_factory=TransformerSetup)


def model_dir_problem(model_dir: Path) -> str | None:
    """What is wrong with a Wan2.2-Animate model folder, naming the file and what to do; None when
    it looks whole."""
    return folder_problem(
        model_dir,
        "The model folder",
        REQUIRED_PARTS,
        ["model_index.json", *(f"{part}/config.json" for part in ("transformer", "vae", "image_encoder"))],
        "Run `python -m backend download` or set the model folder in the add-on preferences.",
    )


def check_model_dir(model_dir: Path) -> None:
    problem = model_dir_problem(model_dir)
    if problem:
        raise RequestError(problem)


def pick_device(requested: str = "auto") -> tuple[str, str]:
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    # bf16 is how the weights ship and what the DiT was trained in; CPU stays fp32 for speed and parity.
    # MPS (Apple Silicon) runs bf16 too: fp32 would double the model in the memory it shares with the CPU.
    return requested, ("bfloat16" if requested.startswith(("cuda", "mps")) else "float32")


class ModelStore:
    def __init__(self, device: str = "auto", leader=None) -> None:
        self._device_request = device
        # A sequence_parallel.Leader when launched with torchrun on several GPUs.
        self._leader = leader
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    @property
    def parallel(self) -> bool:
        return self._leader is not None

    def device(self) -> str:
        return pick_device(self._device_request)[0]

    def available_bytes(self) -> int | None:
        """Accelerator memory this backend may use (free plus what it holds), None on CPU."""
        device = self.device()
        if device == "mps":
            import torch

            # Unified memory: what macOS lets the GPU use, less what others hold there now.
            held = torch.mps.driver_allocated_memory() - torch.mps.current_allocated_memory()
            return int(torch.mps.recommended_max_memory() - max(held, 0))
        if not device.startswith("cuda"):
            return None
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return free + torch.cuda.memory_reserved(torch.device(device))

    def get(self, model_dir: Path, options: LoadOptions | None = None) -> tuple[LoadedModel, bool]:
        """The pipeline for ``model_dir`` with ``options`` and whether this call loaded it."""
        model_dir = Path(model_dir).resolve()
        options = options or LoadOptions()
        with self._lock:
            loaded = self._loaded
            if loaded is not None and loaded.model_dir == model_dir and loaded.options == options:
                return loaded, False
            if self._leader is not None and loaded is not None:
                raise RequestError(
                    "With several GPUs the model loads once per backend start: restart the backend "
                    "to change the model folder, memory mode, fp8 or compile."
                )
            check_model_dir(model_dir)
            self._loaded = None  # let the old pipeline go before the new one takes memory
            t0 = time.perf_counter()  # the first import of torch and diffusers is part of the load
            import torch

            if loaded is not None and torch.cuda.is_available():
                import gc

                del loaded
                gc.collect()
                torch.cuda.empty_cache()  # a mode switch must not hold the old copy's memory
            from diffusers import WanAnimatePipeline

            device, dtype = pick_device(self._device_request)
            try:
                pipe = WanAnimatePipeline.from_pretrained(model_dir, dtype=getattr(torch, dtype))
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                # Truncated safetensors, a config from another model: say which folder and what to do.
                raise RequestError(
                    f"The model in {model_dir} failed to load ({type(exc).__name__}: {str(exc)[:500]}). "
                    "Its files may be damaged or from another model: run `python -m backend download` "
                    "again (it resumes and replaces damaged files) or pick another model folder."
                ) from exc
            if options.fp8:
                # Weights stored in fp8 and cast per layer to the compute dtype as it runs; the
                # norms and embeddings the model marks as precision-critical stay as they are.
                pipe.transformer.enable_layerwise_casting(
                    storage_dtype=torch.float8_e4m3fn, compute_dtype=getattr(torch, dtype)
                )
            _place(pipe, options.memory_mode, torch.device(device))
            pipe.set_progress_bar_config(disable=True)
            if self._leader is not None:
                self._leader.load(pipe.transformer, str(model_dir), dtype, options.fp8)
            if options.compile:
                # Only the repeated block is compiled: one graph serves all 40, so the first
                # window pays seconds, not minutes.
                pipe.transformer.compile_repeated_blocks(fullgraph=False)

            def held(module) -> int:
                return sum(p.numel() * p.element_size() for p in module.parameters())

            weight_bytes, block_bytes = held(pipe.transformer), held(pipe.transformer.blocks)
            source = folder_source(model_dir)
            tiny = is_tiny_model(model_dir)
            self._loaded = LoadedModel(
                pipe=pipe,
                model_dir=model_dir,
                device=device,
                dtype=dtype,
                tiny=tiny,
                model_id=source.get("repo_id", "tiny-random-wan-animate" if tiny else model_dir.name),
                revision=source.get("revision", "local"),
                load_seconds=time.perf_counter() - t0,
                options=options,
                weight_bytes=weight_bytes,
                block_weight_bytes=block_bytes,
            )
            return self._loaded, True

    def set_up_for_job(self, model: LoadedModel, attention: str, loras: list[LoraSpec]) -> None:
        """This job's attention kernel and LoRAs, on every rank."""
        # Rank 0 first: a LoRA it refuses is never sent to the others.
        set_up_transformer(model.pipe.transformer, model.setup, attention, loras, pipeline=model.pipe)
        if self._leader is not None:
            self._leader.set_up_for_job(attention, loras)


def _place(pipe, memory_mode: str, device) -> None:
    """Put the pipeline in memory the way ``memory_mode`` says."""
    import torch

    if memory_mode == "resident":
        pipe.to(device)
        return
    # Offloaded modes decode in tiles, so the decode at a window hand-off is never the peak.
    pipe.vae.enable_tiling()
    if memory_mode == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif memory_mode == "group_offload":
        # One transformer block at a time on the GPU, the next one arriving on a side stream
        # while this one computes (a 14B block moves in ~28 ms and computes in ~200 ms at 720p).
        pipe.enable_group_offload(
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="block_level",
            num_blocks_per_group=1,
            use_stream=device.type == "cuda",
        )
    elif memory_mode == "sequential_offload":
        # Layer by layer: diffusers' leaf-level group offload, which prefetches the next layer on
        # a side stream. (accelerate's enable_sequential_cpu_offload fails on the umT5 embedding
        # with transformers 5: "new() received an invalid combination of arguments".)
        pipe.enable_group_offload(
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="leaf_level",
            use_stream=device.type == "cuda",
        )
    else:
        raise RequestError(f"unknown memory mode {memory_mode!r}")
