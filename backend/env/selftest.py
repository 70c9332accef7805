"""``python -m backend selftest``: does this environment work? Imports every package the backend
uses, then builds a tiny random Wan-Animate pipeline, loads it with diffusers and runs it
one denoising step on the CPU. Set-up runs it in a new environment before putting it in use.
Exit code 0 and a last line ``selftest passed`` when it works; otherwise the failing part."""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from pathlib import Path

# The modules the backend imports at run time, by import name, the quick ones first: the check
# stops at the first that fails.
MODULES = (
    "numpy",
    "PIL",
    "requests",
    "av",
    "cv2",
    "ftfy",
    "sentencepiece",
    "safetensors",
    "fastapi",
    "uvicorn",
    "onnxruntime",
    "huggingface_hub",
    "mediapipe",
    "torch",
    "transformers",
    "diffusers",
    "accelerate",
    "peft",
)


def check_imports() -> str | None:
    """The first import that fails, None when all work."""
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a broken package can raise anything on import
            return f"import {name}: {type(exc).__name__}: {exc}"
    return None


def accelerators() -> str:
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append(f"cuda ({torch.cuda.get_device_name(0)})")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps (Apple GPU, unified memory)")
    return ", ".join(found)


def one_step() -> None:
    import numpy as np
    import torch
    from diffusers import WanAnimatePipeline
    from PIL import Image

    from .tiny_model import make_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        pipe = WanAnimatePipeline.from_pretrained(make_tiny_model(Path(tmp) / "tiny"))
        pipe.set_progress_bar_config(disable=True)
        rng = np.random.default_rng(0)
        size = pipe.transformer.config.motion_encoder_size

        def frames(k: int, shape: tuple[int, ...]) -> list:
            return [Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)) for _ in range(k)]

        with torch.inference_mode():
            out = pipe(
                image=frames(1, (32, 32, 3))[0],
                pose_video=frames(5, (32, 32, 3)),
                face_video=frames(5, (size, size, 3)),
                prompt="a person dances",
                height=32,
                width=32,
                segment_frame_length=5,
                num_inference_steps=1,
                mode="animate",
                prev_segment_conditioning_frames=1,
                guidance_scale=1.0,
                generator=torch.Generator().manual_seed(0),
                output_type="np",
            ).frames[0]
        if out.shape[0] != 5 or not np.isfinite(out).all():
            raise RuntimeError(f"the tiny model gave frames of shape {out.shape}")


def main() -> int:
    t0 = time.monotonic()
    print(f"python {sys.version.split()[0]} at {sys.executable}", flush=True)
    problem = check_imports()
    if problem:
        print(problem, flush=True)
        print("selftest failed: a package does not import (above)", flush=True)
        return 1
    print(f"imports ok; devices: {accelerators()}", flush=True)
    try:
        one_step()
    except Exception as exc:  # noqa: BLE001 - whatever fails, the environment is not fit for use
        print(f"selftest failed: the tiny model's step: {type(exc).__name__}: {exc}", flush=True)
        return 1
    print(f"selftest passed in {time.monotonic() - t0:.0f} s", flush=True)
    return 0
