"""Benchmark (not a test): colour drift across windows, with the correction on and off.

Two measurements, each printed as the mean colour difference (0-255 units, per-channel means)
of the last window against the first, and the ratio off/on:

1. the real window loop (backend.generation.window_loop) on the tiny random model, over a still
   pose and face, so every window should look alike: whatever differs is drift;
2. the Wan-Animate-2 engine's own segment loop (backend.engines.wan_animate_2) on its tiny random
   model, over a still driving clip, the same way;
3. a synthetic clip whose windows drift the way long Wan-Animate shots are reported to
   (each window a little flatter and brighter than the one before, its overlap frames too),
   corrected by the same matching at each hand-off.

Run: `python3 tools/dev.py bench` (or this file with the backend environment's Python).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_tables  # noqa: E402

from backend.generation.colour_match import drift, match_colours  # noqa: E402
from backend.generation.window_plan import plan_windows  # noqa: E402


def tiny_model_drift(windows: int = 6) -> tuple[float, float, float]:
    import torch
    from diffusers import WanAnimatePipeline
    from PIL import Image

    from backend.env.tiny_model import make_tiny_model
    from backend.generation.window_loop import WindowInputs, assemble, generate_windows
    from backend.generation.window_store import WindowStore

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="wan-drift-"))
    pipe = WanAnimatePipeline.from_pretrained(make_tiny_model(tmp / "tiny"))
    pipe.set_progress_bar_config(disable=True)
    size = pipe.transformer.config.motion_encoder_size
    rng = np.random.default_rng(1)
    pose = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    face = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    segment, overlap = 9, 1
    n = overlap + windows * (segment - overlap)
    results: dict[bool, float] = {}
    seconds: dict[bool, float] = {}
    image = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    for on in (False, True):
        inp = WindowInputs(
            image=image,
            pose=[pose] * n,
            face=[face] * n,
            background=None,
            mask=None,
            prompt="a person stands still",
            width=32,
            height=32,
            segment=segment,
            overlap=overlap,
            steps=4,
            mode="animate",
            guidance_scale=1.0,
            seed=0,
            colour_match=on,
        )
        store = WindowStore(tmp / f"w{int(on)}", {"on": on})
        t0 = time.perf_counter()
        with torch.inference_mode():
            plan, _ = generate_windows(pipe, inp, store, lambda *a: None)
        seconds[on] = time.perf_counter() - t0
        frames = np.stack(assemble(store, plan, n)).astype(np.float64) / 255.0
        first, last = frames[:segment], frames[-(segment - overlap) :]
        results[on] = drift(last, first)
    return results[False], results[True], seconds[True] / seconds[False]


class _CPU:
    """The two figures the engine asks of the backend's model store: this device, no GPU budget."""

    def device(self) -> str:
        return "cpu"

    def available_bytes(self) -> None:
        return None


def animate2_drift(segments: int = 6) -> tuple[float, float, int]:
    """Drift of the last segment against the first, matching off and on, and how many segment hand-offs the match actually corrected (with random weights
    the re-generated conditioning frames rarely resemble the tail, so this is plumbing)."""
    import torch
    from PIL import Image

    from backend.engines.wan_animate_2 import DrivingInputs, WanAnimate2Engine
    from backend.env.tiny_model import make_tiny_animate2
    from backend.generation.window_store import WindowStore
    from backend.protocol import JobSettings

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="wan-drift-a2-"))
    make_tiny_animate2(tmp / "a2")  # into a2/<engine folder>, as `download --engine` puts it
    engine = WanAnimate2Engine("wan-animate-2", _CPU(), tmp / "a2")
    segment, overlap, size = 9, 1, 32
    settings = JobSettings(engine="wan-animate-2", width=size, height=size, steps=4, segment_frames=segment)
    prepared = engine.prepare(settings, lambda **_kw: None)
    prepared.handle.pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(1)
    still = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    image = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    n = overlap + segments * (segment - overlap)
    results: dict[bool, float] = {}
    matched = 0
    for on in (False, True):
        inp = DrivingInputs(
            image=image,
            driving=[still] * n,
            prompt="a person stands still",
            width=size,
            height=size,
            segment=segment,
            overlap=overlap,
            steps=4,
            guidance_scale=3.0,
            seed=0,
            colour_match=on,
        )
        store = WindowStore(tmp / f"s{int(on)}", {"on": on})
        out = engine.generate(prepared, inp, store, lambda *a: None, n)
        frames = np.stack(out.frames).astype(np.float64) / 255.0
        first, last = frames[:segment], frames[-(segment - overlap) :]
        results[on] = drift(last, first)
        if on:
            matched = sum(g is not None for g in out.report["colour_gains"])
    return results[False], results[True], matched


def synthetic_drift(windows: int = 10, segment: int = 17, overlap: int = 1) -> tuple[float, float]:
    import skimage.data

    still = skimage.data.astronaut()[::8, ::8].astype(np.float64) / 255.0
    n = overlap + windows * (segment - overlap)
    plan, _ = plan_windows(n, segment, overlap)
    rng = np.random.default_rng(0)
    # A still subject with a little sensor noise: any change of the mean colour is drift.
    truth = [np.clip(still + rng.normal(0, 0.01, still.shape), 0, 1) for _ in range(plan[-1].end)]

    def generated(k: int, frames: list[np.ndarray]) -> np.ndarray:
        # Window k comes out a little flatter, brighter and warmer than window k-1.
        gain = 0.97**k
        shift = np.array([0.012, 0.008, 0.0]) * k
        return np.clip(0.5 + (np.stack(frames) - 0.5) * gain + shift, 0, 1)

    out = {}
    for on in (False, True):
        kept, prev_tail = [], None
        for win in plan:
            frames = generated(win.index, truth[win.start : win.end])
            if on and prev_tail is not None:
                found = match_colours(prev_tail, frames[:overlap])
                if found is not None:
                    gain, offset, _ = found
                    frames = np.clip(frames * gain + offset, 0, 1)
            prev_tail = frames[-overlap:]
            kept.append(frames[win.keep_from :])
        out[on] = drift(kept[-1], kept[0])
    return out[False], out[True]


def main() -> int:
    ap = argparse.ArgumentParser(description="colour drift across windows, matching off and on")
    doc_tables.add_argument(ap)
    args = ap.parse_args()
    print("Colour drift: mean colour difference of the last window against the first (0-255)")
    print(f"{'case':<44}{'off':>8}{'on':>8}{'off/on':>9}")
    s_off, s_on = synthetic_drift()
    print(
        f"{'synthetic clip, 10 windows, injected drift':<44}{s_off:8.2f}{s_on:8.2f}{s_off / max(s_on, 1e-9):9.1f}"
    )
    t_off, t_on, cost = tiny_model_drift()
    print(
        f"{'tiny random model, 6 windows, still pose':<44}{t_off:8.2f}{t_on:8.2f}{t_off / max(t_on, 1e-9):9.1f}"
    )
    print(f"time of the tiny-model run with matching on / off: {cost:.2f}")
    a_off, a_on, a_matched = animate2_drift()
    print(
        f"{'tiny random Animate-2, 6 segments, still clip':<44}{a_off:8.2f}{a_on:8.2f}"
        f"{a_off / max(a_on, 1e-9):9.1f}"
    )
    print(
        f"Animate-2 hand-offs matched: {a_matched} of 5 "
        "(random weights: this checks the plumbing, not whether the real model drifts)"
    )
    if args.write_docs:
        rows = [
            ["synthetic clip, 10 windows, each window 3 % flatter and a little brighter/warmer", s_off, s_on],
            ["tiny random model, 6 windows, still pose", t_off, t_on],
            ["tiny random Wan-Animate-2, 6 segments, still clip", a_off, a_on],
        ]
        text = doc_tables.table(
            ["case", "matching off", "on", "off/on"],
            [[case, f"{off:.2f}", f"{on:.2f}", f"{off / max(on, 1e-9):.1f}"] for case, off, on in rows],
        )
        text += (
            f"\n\nTime of the tiny-model run with matching on / off: {cost:.2f}. "
            f"Wan-Animate-2 hand-offs whose first frames showed the previous tail: {a_matched} of 5."
        )
        doc_tables.write("docs/measurements.md", "bench_drift.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
