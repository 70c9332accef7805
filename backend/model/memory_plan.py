"""How much accelerator memory a job needs in each memory mode, and which mode to use.

No torch here: sizes come from the model folder's files and configs, and the free memory is
passed in, so the choice and the out-of-memory advice are plain arithmetic a test can check.

The activation and decode terms are estimates from the token count (see performance.md);
``benchmarks/bench_speed.py`` prints the measured peak of each mode beside them on a GPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..protocol import MEMORY_MODES, RequestError

# Fastest first. "auto" takes the first one whose estimate fits.
MODES = MEMORY_MODES[1:]
GIB = 1024**3
HEADROOM = 0.9  # allocator fragmentation and the CUDA context: never plan on the last 10 %
# Pixels of one frame decoded at once: the Wan VAE decodes frame by frame, and its
# full-resolution stages hold about this many bytes per output pixel (bf16, untiled).
DECODE_BYTES_PER_PIXEL = 3 * 1024
TILED_DECODE_BYTES = int(0.75 * GIB)  # 256 px tiles: independent of the frame size


@dataclass(frozen=True)
class ModelSizes:
    """Bytes of each part as stored (bf16), and the transformer's shape."""

    transformer: int
    text_encoder: int
    image_encoder: int
    vae: int
    dim: int
    ffn_dim: int
    layers: int

    @property
    def block(self) -> int:
        # Self-attention, cross-attention (text and image keys) and the feed-forward, in bf16.
        return 2 * (10 * self.dim * self.dim + 2 * self.dim * self.ffn_dim)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin", ".pth"))


def model_sizes(model_dir: Path) -> ModelSizes:
    model_dir = Path(model_dir)
    cfg = json.loads((model_dir / "transformer" / "config.json").read_text())
    return ModelSizes(
        transformer=_folder_bytes(model_dir / "transformer"),
        text_encoder=_folder_bytes(model_dir / "text_encoder"),
        image_encoder=_folder_bytes(model_dir / "image_encoder"),
        vae=_folder_bytes(model_dir / "vae"),
        # Wan2.2-Animate's config names heads x head size; Animate-2's names the width.
        dim=int(cfg["dim"])
        if "dim" in cfg
        else int(cfg["num_attention_heads"]) * int(cfg["attention_head_dim"]),
        ffn_dim=int(cfg["ffn_dim"]),
        layers=int(cfg["num_layers"]),
    )


def tokens(width: int, height: int, frames: int) -> int:
    """Transformer tokens of one window: (latent frames + the reference frame) x (H/16) x (W/16)."""
    return ((frames - 1) // 4 + 2) * (height // 16) * (width // 16)


def activation_bytes(sizes: ModelSizes, width: int, height: int, frames: int) -> int:
    # Inside a block: the hidden state, its norm, q, k, v and the attention output, plus the
    # feed-forward's widened activation twice; flash attention keeps no S x S matrix.
    return tokens(width, height, frames) * (6 * sizes.dim + 2 * sizes.ffn_dim) * 2


def decode_bytes(width: int, height: int, tiled: bool) -> int:
    return TILED_DECODE_BYTES if tiled else width * height * DECODE_BYTES_PER_PIXEL


def needs(sizes: ModelSizes, width: int, height: int, frames: int, fp8: bool = False) -> dict[str, int]:
    """Estimated peak bytes per mode; the offload modes decode tiled."""
    transformer = sizes.transformer // 2 if fp8 else sizes.transformer
    block = sizes.block // 2 if fp8 else sizes.block
    act = activation_bytes(sizes, width, height, frames)
    # What stays outside the blocks (embeddings, motion and face encoders) is onloaded whole.
    outside = max(transformer - block * sizes.layers, 0)
    encoders = sizes.text_encoder + sizes.image_encoder
    return {
        "resident": transformer + encoders + sizes.vae + max(act, decode_bytes(width, height, False)),
        "model_offload": max(
            transformer + act, sizes.text_encoder, sizes.vae + decode_bytes(width, height, True)
        ),
        # Two groups at once: the one computing and the next one arriving on a side stream.
        "group_offload": outside + 2 * block + act + sizes.vae // 4,
        "sequential_offload": block // 4 + act,
    }


# Wan-Animate-2 (engines/wan_animate_2.py) runs whole on the GPU or streams its blocks.
ANIMATE2_MODES = ("resident", "group_offload")


def reference_cache_bytes(sizes: ModelSizes, width: int, height: int, frames: int) -> int:
    """Animate-2's reference K/V: a reference pass per segment stores, in every layer, K and V
    (bf16) for as many tokens as the segment's latent frames, kept on the GPU for all its steps."""
    reference_tokens = ((frames - 1) // 4 + 1) * (height // 16) * (width // 16)
    return 2 * reference_tokens * sizes.dim * 2 * sizes.layers


def animate2_needs(sizes: ModelSizes, width: int, height: int, frames: int) -> dict[str, int]:
    """Estimated peak bytes of Animate-2's modes: Wan2.2-Animate's shape (the same block
    layout) plus the reference cache, which streaming the blocks does not move. Its weights are
    always held in bf16 (the engine has no fp8 storage)."""
    cache = reference_cache_bytes(sizes, width, height, frames)
    base = needs(sizes, width, height, frames)
    return {mode: base[mode] + cache for mode in ANIMATE2_MODES}


def choose(need: dict[str, int], available: int, modes: tuple[str, ...] = MODES) -> str | None:
    """The fastest of ``modes`` that fits ``available`` bytes, or None when none does."""
    for mode in modes:
        if need[mode] <= available * HEADROOM:
            return mode
    return None


# Sequence parallel ranks each hold the whole transformer: only the modes that keep it whole.
PARALLEL_MODES = ("resident", "model_offload")


# Unified memory (Apple Silicon's MPS): the GPU and the CPU share one memory, so offloading moves
# weights within the same memory and saves nothing; only the whole model on the GPU is planned.
UNIFIED_MODES = ("resident",)


def allowed_modes(parallel: bool, unified: bool = False) -> tuple[str, ...]:
    return UNIFIED_MODES if unified else PARALLEL_MODES if parallel else MODES


def resolve(
    requested: str, need: dict[str, int], available: int | None, parallel: bool = False, unified: bool = False
) -> str:
    """The mode to run: the requested one, or for "auto" the fastest that fits."""
    if requested not in MEMORY_MODES:
        raise RequestError(f"memory_mode must be one of {MEMORY_MODES}, not {requested!r}")
    if unified:
        if requested not in ("auto", *UNIFIED_MODES):
            raise RequestError(
                "On Apple Silicon the GPU shares the computer's memory, so offloading saves nothing: "
                "use GPU Memory 'Automatic' or 'Everything on the GPU'."
            )
        if available is not None and choose(need, available, UNIFIED_MODES) is None:
            raise RequestError(
                f"The model needs about {_gb(need['resident'])} of GPU memory here and macOS lets the GPU "
                f"use about {_gb(available)}: choose a lower resolution or fewer frames per window, or a "
                "computer with more memory (see the README's Apple Silicon note)."
            )
        return "resident"
    if parallel and requested not in ("auto", *PARALLEL_MODES):
        raise RequestError(
            f"With several GPUs the memory mode must be one of {PARALLEL_MODES} (each GPU holds the "
            "whole transformer); run one backend per GPU to use offloading."
        )
    if requested != "auto":
        return requested
    if available is None:  # no accelerator: everything is in main memory anyway
        return "resident"
    mode = choose(need, available, allowed_modes(parallel))
    if mode is None:
        raise RequestError(too_big_message(need, available, "auto", allowed_modes(parallel)))
    return mode


def _gb(n: int) -> str:
    return f"{n / GIB:.1f} GB"


def too_big_message(need: dict[str, int], available: int, mode: str, modes: tuple[str, ...] = MODES) -> str:
    """What to do instead, among the ``modes`` this backend can run."""
    fits = choose(need, available, modes)
    head = f"The GPU ran out of memory in memory mode '{mode}' (about {_gb(available)} usable"
    if mode in need:
        head += f"; this job needs about {_gb(need[mode])} in that mode"
    head += ")."
    if fits is not None and fits != mode:
        return f"{head} Choose memory mode '{fits}' (about {_gb(need[fits])}) in the add-on preferences."
    return (
        f"{head} Even '{modes[-1]}' needs about {_gb(need[modes[-1]])}: lower the width and height, "
        "use fewer frames per window, or close what else is using the GPU."
    )
