"""Where each keypoint of a job lies in the generated frames, frame by frame
(bpy-free): the data behind the armature guides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...backend.protocol import BODY_NAMES, BODY_SRC_A, BODY_SRC_B, HAND_NAMES
from .result_files import read_job, read_keypoints

# Each guide point's parent (the point its bone stretches to), by name.
BODY_PARENT = {
    "Nose": "Neck", "RShoulder": "Neck", "LShoulder": "Neck", "RElbow": "RShoulder", "RWrist": "RElbow",
    "LElbow": "LShoulder", "LWrist": "LElbow", "RHip": "Neck", "RKnee": "RHip", "RAnkle": "RKnee",
    "LHip": "Neck", "LKnee": "LHip", "LAnkle": "LKnee", "REye": "Nose", "LEye": "Nose", "REar": "REye",
    "LEar": "LEye", "LToe": "LAnkle", "RToe": "RAnkle",
}  # fmt: skip
WEAK_THRESHOLD = 0.5


def _hand_parent(side: str, j: int) -> str:
    if j == 0:
        return f"{side}Wrist"  # the hand hangs off the body's wrist point
    return f"{side}_{HAND_NAMES[0 if j % 4 == 1 else j - 1]}"


POINT_NAMES: tuple[str, ...] = BODY_NAMES + tuple(f"{s}_{n}" for s in ("L", "R") for n in HAND_NAMES)
PARENTS: dict[str, str | None] = {
    **{n: BODY_PARENT.get(n) for n in BODY_NAMES},
    **{f"{s}_{n}": _hand_parent(s, j) for s in ("L", "R") for j, n in enumerate(HAND_NAMES)},
}


@dataclass
class GuideTrack:
    names: tuple[str, ...]
    width: int  # generated frame size in pixels
    height: int
    frames: list[list[tuple[float, float, float]]]  # per output frame: (x, y, confidence) per name
    weak: list[int]  # output frames where the body was found only weakly
    per_model: list[list[tuple[float, float, float]]]  # the same points per generated (30 fps) frame
    output_to_model: list[int]

    @property
    def frame_count(self) -> int:
        return len(self.frames)


def _points(kps: list[list[float]]) -> list[tuple[float, float, float]]:
    body = [
        tuple((kps[a][k] + kps[b][k]) / 2.0 for k in range(3))
        for a, b in zip(BODY_SRC_A, BODY_SRC_B, strict=True)
    ]
    hands = [tuple(kps[i]) for i in range(91, 133)]
    return body + hands


def load_track(job_dir: Path) -> GuideTrack:
    job = read_job(job_dir)
    doc = read_keypoints(job_dir)
    kp = doc["frames"]
    clip = job["inputs"]["clip"]
    w, h = job["settings"]["width"], job["settings"]["height"]
    if kp and all("pose_drawn" in f for f in kp):
        # The skeletons as the pose frames drew them (retargeted ones included), in pose_size pixels.
        pw, ph = doc.get("pose_size", (w, h))
        per_model = [[(x * w / pw, y * h / ph, c) for x, y, c in f["pose_drawn"]] for f in kp]
    else:
        # Older jobs: the same fit the pose frames were drawn with, the clip inside the output.
        s = min(w / clip["width"], h / clip["height"])
        dx, dy = (w - clip["width"] * s) / 2.0, (h - clip["height"] * s) / 2.0
        per_model = [[(x * s + dx, y * s + dy, c) for x, y, c in _points(f["keypoints"])] for f in kp]
    frames = [per_model[m] for m in job["output_to_model"]]
    weak = [i for i, pts in enumerate(frames) if sum(c for _, _, c in pts[:20]) / 20.0 < WEAK_THRESHOLD]
    return GuideTrack(POINT_NAMES, w, h, frames, weak, per_model, list(job["output_to_model"]))


def edited_keypoints(
    saved: dict, track: GuideTrack, edited: dict[int, list[tuple[float, float, float]]]
) -> dict:
    """A keypoints.json for regenerating: the saved detections (they still place the
    face crops) plus ``pose_points`` to draw, per generated frame. ``edited`` maps an
    output frame to the guide's points read back there; a point the artist moved
    counts as confident, so a fixed lost hand is drawn."""
    first_output: dict[int, int] = {}
    for f, m in enumerate(track.output_to_model):
        first_output.setdefault(m, f)
    out = dict(saved)
    out["pose_points_width"], out["pose_points_height"] = track.width, track.height
    frames = []
    for m, frame in enumerate(saved["frames"]):
        points = list(track.per_model[m])
        f = first_output.get(m)
        if f is not None and f in edited:
            for i, (x, y, _c) in enumerate(edited[f]):
                ox, oy, oc = points[i]
                moved = abs(x - ox) > 0.5 or abs(y - oy) > 0.5
                points[i] = (x, y, 1.0 if moved else oc)
        frames.append({**frame, "pose_points": [list(p) for p in points]})
    out["frames"] = frames
    return out
