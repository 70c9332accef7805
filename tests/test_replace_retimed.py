"""Replace Performer on a strip played at another speed: the job reads exactly the movie
frames the strip shows, and the result lines up with it frame for frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import BLENDER_VERSIONS, run_blender

from wan_animate_blender.core.strip_timing import StripTimingError, shown_range


def test_plain_strip_shows_its_trimmed_range():
    r = shown_range(frame_start=5, final_start=15, final_end=55, length=120, retiming_keys=[])
    assert (r.first, r.count, r.speed) == (10, 40, 1.0)


def test_uniform_speed_maps_like_blender():
    # Measured in 4.2: 60 frames at 200% gives keys 1 and 31, and frame 20 shows content 37.
    r = shown_range(1, 20, 21, 60, [1, 31])
    assert r.first == 37
    r = shown_range(1, 1, 32, 60, [1, 31])
    assert (r.first, r.count) == (0, 60) and r.speed == pytest.approx(60 / 31)


def test_blender_5_puts_the_end_key_one_past_the_last_frame():
    # Measured in 5.0: 120 frames at 250% gives keys 5 and 53; frames 8 and 48 show 8 and 108.
    r = shown_range(5, 8, 49, 120, [5, 53], keys_end_exclusive=True)
    assert (r.first, r.first + r.count - 1) == (8, 108)


def test_blender_4_5_keys_like_4_2_with_the_retimed_duration():
    # Measured in 4.5: 120 frames at 250 % gives keys 5 and 53 like 5.0, but maps like 4.2: after
    # trimming 3 and 4 frames, frames 8 and 49 show movie frames 7 and 109.
    r = shown_range(5, 8, 50, 120, [5, 53])
    assert (r.first, r.first + r.count - 1) == (7, 109)


def test_varying_speed_is_refused_with_a_way_out():
    with pytest.raises(StripTimingError, match="split the strip"):
        shown_range(1, 1, 50, 60, [1, 20, 50])


def _closest_clip_frame(clip, image_path) -> int:
    shown = cv2.imread(str(image_path)).astype(np.float32)
    cap = cv2.VideoCapture(str(clip))
    errors = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        errors.append(float(np.mean((frame.astype(np.float32) - shown) ** 2)))
    return int(np.argmin(errors))


@pytest.fixture(scope="module")
def retimed_blends(tmp_path_factory, carphone_clip):
    """The retimed strip made in each Blender that can add retiming keys headless."""
    return {v: _make_retimed(tmp_path_factory, carphone_clip, v) for v in ("4.2", "4.5")}


def _make_retimed(tmp_path_factory, carphone_clip, version: str):
    tmp = tmp_path_factory.mktemp(f"retimed{version}")
    r = run_blender(
        version,
        "replace_retimed.py",
        {
            "make": True,
            "clip": str(carphone_clip),
            "speed_percent": 250.0,
            "trim_start": 3,
            "trim_end": 4,
            "blend": str(tmp / "retimed.blend"),
            "renders": str(tmp),
        },
        tmp,
    )
    return tmp / "retimed.blend", r


@BLENDER_VERSIONS
def test_replace_follows_the_strips_speed(
    bl, tmp_path, retimed_blends, backend_python, tiny_model, extension_zip, carphone_clip, astronaut_png
):
    # 4.5 opens its own file (a strip made there is what a 4.5 artist replaces); 5.0 cannot add
    # retiming keys headless and opens 4.2's.
    blend, made = retimed_blends["4.5" if bl == "4.5" else "4.2"]
    assert len(made["keys"]) == 2  # a real speed change, not an untouched strip
    r = run_blender(
        bl,
        "replace_retimed.py",
        {
            "zip": extension_zip,
            "backend_python": backend_python,
            "model_dir": str(tiny_model),
            "output_dir": str(tmp_path / "out"),
            "character": str(astronaut_png),
            "blend": str(blend),
            "renders": str(tmp_path),
        },
        tmp_path,
    )
    assert r["result"] == ["FINISHED"], r["status"]
    first_shown, last_shown = (_closest_clip_frame(carphone_clip, p) for p in r["renders"])
    st = r["settings"]
    # The job starts and ends on the movie frames Blender shows at the strip's ends ...
    assert abs(st["clip_start"] - first_shown) <= 1
    assert abs(st["clip_start"] + st["clip_frames"] - 1 - last_shown) <= 1
    assert st["clip_speed"] == pytest.approx(2.5, rel=0.05)
    # ... and the result covers exactly the strip's frames.
    assert r["made"] == r["plate"] and r["frame_count"] == r["plate"][1]
