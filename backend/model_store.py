"""Loading the Wan-Animate pipeline once per backend and keeping it warm.

The same code path loads the real Wan-AI/Wan2.2-Animate-14B-Diffusers folder and
the tiny random model that tests use."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .api_types import RequestError
from .tiny_model import is_tiny_model

REQUIRED_PARTS = (
    "model_index.json",
    "transformer",
    "vae",
    "text_encoder",
    "tokenizer",
    "image_encoder",
    "scheduler",
)
HF_REPO_ID = "Wan-AI/Wan2.2-Animate-14B-Diffusers"
SOURCE_FILE = "wan_animate_source.json"  # written by `download`: repo id and revision


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


def check_model_dir(model_dir: Path) -> None:
    model_dir = Path(model_dir)
    missing = [p for p in REQUIRED_PARTS if not (model_dir / p).exists()]
    if missing:
        raise RequestError(
            f"The model folder {model_dir} is incomplete (missing {', '.join(missing)}). "
            "Run `python -m backend download` or set the model folder in the add-on preferences."
        )


def pick_device(requested: str = "auto") -> tuple[str, str]:
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    # bf16 is how the weights ship and what the DiT was trained in; CPU stays fp32 for speed and parity.
    return requested, ("bfloat16" if requested.startswith("cuda") else "float32")


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

    def get(self, model_dir: Path) -> tuple[LoadedModel, bool]:
        """The pipeline for ``model_dir`` and whether this call loaded it."""
        model_dir = Path(model_dir).resolve()
        with self._lock:
            if self._loaded is not None and self._loaded.model_dir == model_dir:
                return self._loaded, False
            check_model_dir(model_dir)
            self._loaded = None  # let the old pipeline go before the new one takes memory
            t0 = time.perf_counter()  # the first import of torch and diffusers is part of the load
            import torch
            from diffusers import WanAnimatePipeline

            device, dtype = pick_device(self._device_request)
            pipe = WanAnimatePipeline.from_pretrained(model_dir, dtype=getattr(torch, dtype))
            pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
            if self._leader is not None:
                self._leader.load(pipe.transformer, str(model_dir), dtype)
            source = {}
            if (model_dir / SOURCE_FILE).is_file():
                source = json.loads((model_dir / SOURCE_FILE).read_text())
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
            )
            return self._loaded, True
