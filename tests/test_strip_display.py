"""What the backend reads is what Blender shows: movie strips of a rotated clip and of a
variable-rate clip, and image strips of linear EXR and 16-bit PNG frames, are rendered frame
by frame in each tested Blender (one process per version), and every render is compared with
the frame the backend's clip reader gives for what the add-on hands it for that strip. Measured this way: 4.2 shows rotated movies as stored, 4.5 and 5.0 upright;
all three show a variable-rate movie at FFmpeg's guessed rate for it (the strip's fps), each
frame the last one whose timestamp has been reached."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import BLENDER_VERSIONS, run_blender
from PIL import Image

from backend.preprocess.clip_reading import iter_frames_rgb, output_frame_sources, probe_clip

W, H, BITS, BLOCK = 64, 48, 6, 8
TIME_BASE = Fraction(1, 30000)
# Irregular moments, none on the 30 fps grid between the first and the last few: a frame
# a player shows late, two close together, a long hold.
VFR_TIMES = [0.0, 0.05, 0.12, 0.2, 0.21, 0.3, 0.45, 0.5, 0.55, 0.6, 0.7, 0.72, 0.9, 1.0]

STEP_TIMES = [i / 30 for i in range(10)] + [10 / 30 + k / 10 for k in range(10)]


def _frame(i: int) -> np.ndarray:
    """Frame ``i`` with its number in blocks along the top and a red corner at the bottom
    left, so both the frame and its orientation can be read back from a render."""
    img = np.full((H, W, 3), 100, np.uint8)
    for b in range(BITS):
        img[:BLOCK, b * BLOCK : (b + 1) * BLOCK] = 235 if i >> b & 1 else 20
    img[-12:, :12] = (230, 20, 20)
    return img


def _write(path: Path, times: list[float], ccw_rotation: int = 0) -> str:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30, options={"crf": "8"})
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        video.codec_context.time_base = TIME_BASE
        if ccw_rotation:
            video.set_display_rotation(ccw_rotation)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(_frame(i), format="rgb24")
            frame.pts, frame.time_base = round(t / TIME_BASE), TIME_BASE
            out.mux(video.encode(frame))
        out.mux(video.encode())
    return str(path)


@pytest.fixture(scope="module")
def strips(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("strip_clips")
    cfr = [i / 30 for i in range(8)]
    vfr = _write(tmp / "vfr.mp4", VFR_TIMES)
    return [
        {"clip": _write(tmp / "rot90.mp4", cfr, 90), "frame_start": 1, "trim_start": 0, "trim_end": 0},
        {"clip": _write(tmp / "rot180.mp4", cfr, 180), "frame_start": 3, "trim_start": 1, "trim_end": 1},
        {"clip": vfr, "frame_start": 1, "trim_start": 0, "trim_end": 0},
        {"clip": vfr, "frame_start": 10, "trim_start": 4, "trim_end": 3},
        # A phone clip that drops to 10 fps: FFmpeg guesses 30 fps, not the 17.6 average.
        {"clip": _write(tmp / "steps.mp4", STEP_TIMES), "frame_start": 1, "trim_start": 0, "trim_end": 0},
    ]


def _read(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _backend_frames(strip: dict, st: dict) -> list[np.ndarray]:
    """The clip frames a job with these settings puts at each output frame."""
    view = probe_clip(Path(strip["clip"]), apply_rotation=st["apply_rotation"]).view(
        st["clip_start"], st["clip_frames"], st["clip_speed"]
    )
    sources = view.model_sources()
    per_output = [
        sources[k] for k in output_frame_sources(view.frame_count, view.fps, len(sources), st["output_fps"])
    ]
    return [rgb for _, rgb in iter_frames_rgb(view, per_output)]


def _number(rgb: np.ndarray, rotation: int) -> int:
    upright = np.rot90(rgb, -rotation)
    return sum(1 << b for b in range(BITS) if upright[:BLOCK, b * BLOCK : (b + 1) * BLOCK].mean() > 128)


def _png16_sequence(folder: Path) -> list[str]:
    """16-bit frames: a full-range ramp that an 8-bit reader clipping at 255 would flatten."""
    folder.mkdir()
    ramp = np.linspace(0, 65535, W).astype(np.uint16)
    paths = []
    for n, tint in enumerate(((1.0, 0.5, 0.25), (0.25, 0.75, 1.0))):
        rgb = np.stack([np.tile((ramp * c).astype(np.uint16), (H, 1)) for c in tint], axis=2)
        path = folder / f"shot_{n + 1:03d}.png"
        assert cv2.imwrite(str(path), rgb[:, :, ::-1])
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module", params=BLENDER_VERSIONS.args[1])
def shown(request, tmp_path_factory, strips, extension_zip) -> tuple[str, dict]:
    """One Blender per version renders every strip; the results feed the tests below."""
    bl = request.param
    tmp = tmp_path_factory.mktemp(f"shown{bl}")
    png16 = _png16_sequence(tmp / "png16")
    args = {"zip": extension_zip, "strips": strips, "renders": str(tmp), "png16": png16}
    return bl, run_blender(bl, "strip_display.py", args, tmp)


def test_the_job_reads_the_movie_frames_each_blender_shows(shown, strips):
    bl, r = shown
    rotation_shown = bl != "4.2"
    for n, (strip, one) in enumerate(zip(strips, r["strips"], strict=True)):
        st = one["settings"]
        assert st["apply_rotation"] is rotation_shown
        assert probe_clip(Path(strip["clip"])).frame_count == one["length"]  # the strip's own length
        renders = [_read(p) for p in one["renders"]]
        read = _backend_frames(strip, st)
        assert len(read) == len(renders), (n, len(read), len(renders))
        for t, (want, got) in enumerate(zip(renders, read, strict=True)):
            assert want.shape == got.shape, (n, t, want.shape, got.shape)
            # The same picture, as upright (or not) as Blender shows it: only the two YUV
            # decoders' rounding differs.
            diff = np.abs(want.astype(int) - got.astype(int)).mean()
            assert diff < 6, (bl, n, t, diff)

    # What each Blender shows, stated: 4.2 leaves the 90-degree clip on its side (64x48).
    quarter = 1 if rotation_shown else 0
    rot90 = [_read(p) for p in r["strips"][0]["renders"]]
    assert rot90[0].shape[:2] == ((W, H) if rotation_shown else (H, W))
    assert [_number(f, quarter) for f in rot90] == list(range(8))
    # A variable-rate strip runs at FFmpeg's guessed rate for the stream (here its average,
    # 14 frames in 0.87 s), for the stream's duration, each frame showing the last one that
    # has started by then: some frames are never shown, others twice.
    vfr = r["strips"][2]
    with av.open(strips[2]["clip"]) as c:
        stream = c.streams.video[0]
        rate, seconds = float(stream.guessed_rate), float(stream.duration * stream.time_base)
    assert vfr["fps"] == pytest.approx(rate, rel=1e-4) and vfr["length"] == round(seconds * rate)
    want = [max(i for i, s in enumerate(VFR_TIMES) if s <= k / rate + 1e-6) for k in range(vfr["length"])]
    assert [_number(_read(p), 0) for p in vfr["renders"]] == want
    assert want != list(range(len(want)))
    trimmed = r["strips"][3]
    assert [_number(_read(p), 0) for p in trimmed["renders"]] == want[4 : len(want) - 3]
    steps = r["strips"][4]
    assert steps["fps"] == pytest.approx(30.0)
    numbers = [_number(_read(p), 0) for p in steps["renders"]]
    assert numbers[:16] == [*range(10), 10, 10, 10, 11, 11, 11]


def test_image_strips_are_read_through_blenders_colour_management(shown):
    """Linear EXR (values up to 4) and 16-bit PNG frames: the frames the job reads are the
    strip as Blender shows it under the scene's view transform, highlights not clipped."""
    bl, r = shown
    for image in r["images"]:
        info = probe_clip(Path(image["clip"]), fps=image["scene_fps"])
        assert info.fps == image["scene_fps"] and info.frame_count == len(image["renders"])
        read = [rgb for _, rgb in iter_frames_rgb(info)]
        for want_path, got in zip(image["renders"], read, strict=True):
            want = _read(want_path).astype(int)
            assert want.shape == got.shape
            diff = np.abs(want - got.astype(int))
            assert diff.mean() < 1.5 and diff.max() <= 6, (bl, image["view"], diff.mean(), diff.max())
    # The EXR ramp from 0 to 4 keeps rising past 1 under the view transform (a reader that
    # clips at 1 would turn its right three quarters flat white).
    exr_white = [rgb for _, rgb in iter_frames_rgb(probe_clip(Path(r["images"][0]["clip"])))][2]
    row = exr_white[H // 2, :, 1].astype(int)
    assert len(set(row[W // 4 :].tolist())) > 10 and (np.diff(row) >= 0).all()
