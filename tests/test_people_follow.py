"""The embedded estimator on the people HOG could not see: small (about 110 px tall), seen
from behind, cut at the waist by the frame's edge. Clips of mannequins rendered in Blender,
written with PyAV as an artist's H.264 reference would be; the answer key is where each one's
joints project. The pick goes through the job's own path (performer_pick.find_performer on the
clip as read), then the pass frame by frame: the skeleton must be on the picked person
whenever they are in view and not hidden behind someone nearer, and never on anyone else."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from conftest import run_blender

from backend.preprocess.clip_reading import MODEL_FPS, iter_frames_rgb, probe_clip
from backend.preprocess.estimator_mediapipe import MediapipeEstimator
from backend.preprocess.performer_pick import find_performer

TORSO = [5, 6, 11, 12]
BLUE, RED, GREEN = (0.15, 0.3, 0.7), (0.7, 0.2, 0.15), (0.2, 0.55, 0.25)
W, H = 640, 360
STREET = [
    # Far and facing the camera, about 110 px tall, walking right.
    {"shirt": GREEN, "start": [-2.6, 7.0], "end": [1.2, 7.0]},
    # Nearer, about 140 px tall, seen from behind (no face), walking left across the first.
    {"shirt": RED, "start": [2.4, 4.5], "end": [-2.2, 4.5], "face": False, "phase": 0.4},
    # Far, standing off to the right.
    {"shirt": BLUE, "start": [3.2, 6.0], "end": [3.0, 6.0], "phase": 0.7},
]
INDOOR = [
    # Facing the camera, waist up.
    {"shirt": BLUE, "start": [-0.45, 0.0], "end": [-0.3, 0.0]},
    # At the right edge, seen from behind, cut at the waist by the frame and by its edge.
    {"shirt": RED, "start": [1.1, 0.3], "end": [0.95, 0.3], "face": False, "phase": 0.5},
]


def _render(tmp: Path, name: str, people: list[dict], frames: int, **scene) -> tuple[Path, list]:
    r = run_blender(
        "4.2",
        "render_people.py",
        {"out_dir": str(tmp / name), "width": W, "height": H, "frames": frames, "people": people, **scene},
        tmp,
    )
    from PIL import Image

    clip = tmp / f"{name}.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=30, options={"crf": "18"})
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        for f in r["frames"]:
            rgb = np.asarray(Image.open(tmp / name / f).convert("RGB"))
            out.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(video.encode())
    truth = [[{int(k): np.array(v) for k, v in p.items()} for p in fr] for fr in r["truth"]]
    return clip, truth


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("street"), "street", STREET, 24)


@pytest.fixture(scope="module")
def indoor(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("indoor"), "indoor", INDOOR, 12, distance=2.2, camera_height=1.45)


def _box(joints: dict) -> np.ndarray:
    pts = np.array(list(joints.values()))
    (x1, y1), (x2, y2) = pts.min(axis=0), pts.max(axis=0)
    t = y2 - y1
    return np.array([x1 - 0.08 * t, y1 - 0.12 * t, x2 + 0.08 * t, y2 + 0.05 * t])


def _state(truth_frame: list, person: int) -> str:
    """What the answer key says of ``person`` on a frame: "out" of view (shoulders or hips out
    of the frame), "hidden" (their torso's middle behind a nearer person: lower feet), "seen"."""
    j = truth_frame[person]
    torso = np.array([j[i] for i in TORSO])
    if not ((torso[:, 0] >= 0) & (torso[:, 0] < W) & (torso[:, 1] >= 0) & (torso[:, 1] < H)).sum() >= 2:
        return "out"
    c = torso.mean(axis=0)
    for q, other in enumerate(truth_frame):
        if q == person:
            continue
        b = _box(other)
        nearer = max(other[15][1], other[16][1]) > max(j[15][1], j[16][1])
        if nearer and b[0] <= c[0] <= b[2] and b[1] <= c[1] <= b[3]:
            return "hidden"
    return "seen"


def _follow(clip: Path, truth: list, person: int, frame: int) -> tuple[str, str]:
    """A pick on ``person``'s chest on ``frame``, the pass over the clip: per frame, where the
    skeleton is ("o" on the picked one, "X" off them, "." none), and the answer key's "s"een /
    "h"idden / "-" out of view."""
    info = probe_clip(clip)
    sources = info.model_sources(MODEL_FPS)
    j = truth[frame][person]
    x, y = (j[11][0] + j[12][0]) / 2, (j[5][1] + j[11][1]) / 2
    got = ""
    with MediapipeEstimator() as est:
        performer = find_performer(info, sources, est, (x / W, y / H), frame)
        assert performer is not None and performer.picked
        b = performer.box
        assert b[0] <= x <= b[2] and b[1] <= y <= b[3], (b, x, y)
        for n, (_src, rgb) in enumerate(iter_frames_rgb(info, sources)):
            k = est.estimate(rgb)
            ok = k[TORSO, 2] >= 0.5
            if ok.sum() < 2:
                got += "."
                continue
            # The found torso points against each person's same joints (some may be out of
            # the frame, where the estimator gives none).
            idx = [i for i, good in zip(TORSO, ok, strict=True) if good]
            d = [np.mean([np.linalg.norm(k[i, :2] - p[i]) for i in idx]) for p in truth[n]]
            size = np.linalg.norm(truth[n][person][5] - truth[n][person][11])
            # On the picked one's joints (where two overlap exactly, on both: the one in front
            # is who shows); "X" is off them.
            got += "o" if d[person] < 0.5 * size + 8 else "X"
    want = "".join({"seen": "s", "hidden": "h", "out": "-"}[_state(fr, person)] for fr in truth)
    print(f"\n  answer {want}\n  got    {got}")
    return got, want


@pytest.mark.parametrize(
    "person, frame",
    [
        (0, 0),  # the small far one, picked on the first frame
        (1, 0),  # the one seen from behind
        (2, 20),  # the small one off to the side, picked on a late frame
    ],
)
def test_a_small_or_turned_away_person_is_followed_while_in_view(street, person, frame):
    clip, truth = street
    got, want = _follow(clip, truth, person, frame)
    assert "X" not in got, (got, want)
    seen = [i for i, s in enumerate(want) if s == "s"]
    missed = [i for i in seen if got[i] != "o"]
    # Holistic needs a frame or two to lock on after the pick or a crossing; no more.
    assert len(missed) <= 2, (missed, got, want)


def test_a_pick_on_someone_cut_by_the_frame_edge_follows_them(indoor):
    clip, truth = indoor
    # The person at the edge, seen from behind: the look over the whole frame misses them, the
    # closer look where the artist clicked does not.
    got, want = _follow(clip, truth, 1, 8)
    assert "X" not in got, (got, want)
    assert got[8:].count("o") >= 3, (got, want)
    # The person facing the camera, cut at the waist by the frame's bottom.
    got, want = _follow(clip, truth, 0, 0)
    assert "X" not in got and got.count("o") >= len(got) - 1, (got, want)
