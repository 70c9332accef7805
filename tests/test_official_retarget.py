"""Retargeting against the official code: get_retarget_pose (wan22's retarget_pose.py) on the
official pose model's metas, drawn by draw_aapose_by_meta_new on the character's canvas, as
process_pipepline.py does with retarget_flag (no FLUX edit), against the backend's plan_retarget
and Retargeting.apply drawn on the same canvas: every point and every pixel.

The inputs keep every confidence above 0 (the official estimator gives every point; the backend
reads confidence 0 as "not given", a documented difference) and the character's neck and
shoulders seen at 0.4 or more (without them the backend does not retarget: retarget.py)."""

from __future__ import annotations

import numpy as np
import pytest
from official_oracle import preprocess
from test_official_preprocess import differing, official_meta, performer

from backend.preprocess.clip_reading import probe_clip
from backend.preprocess.conditioning import build_conditioning
from backend.preprocess.pose_format import draw_on_canvas
from backend.preprocess.retarget import CharacterPose, plan_retarget

OFF = preprocess()


def official_retarget(
    frames: list[np.ndarray], clip: tuple[int, int], char: np.ndarray, canvas: tuple[int, int]
):
    """The official retargeted metas: the first frame's meta, the character's and every frame's,
    through get_retarget_pose(tpl_pose_meta0, refer_pose_meta, tpl_pose_metas, None, None)."""
    (w, h), (cw, ch) = clip, canvas
    metas = OFF.pose2d_utils.load_pose_metas_from_kp2ds_seq(
        np.stack(frames).astype(np.float64), width=w, height=h
    )
    return OFF.retarget_pose.get_retarget_pose(
        official_meta(frames[0], w, h), official_meta(char, cw, ch), metas, None, None
    )


def _cases():
    """(clip size, canvas size, whole pixels, how the character stands)."""
    sizes = [((1280, 720), (1280, 720)), ((1920, 1080), (832, 480)), ((640, 480), (720, 1280)),
             ((1080, 1920), (1280, 720)), ((640, 480), (512, 704))]  # fmt: skip
    return [(clip, canvas, whole, kind) for clip, canvas in sizes for whole in (False, True)
            for kind in ("whole", "no feet", "far")]  # fmt: skip


@pytest.mark.parametrize("clip, canvas, whole, kind", _cases())
def test_retargeted_points_and_frames_are_the_officials(clip, canvas, whole, kind):
    (w, h), (cw, ch) = clip, canvas
    rng = np.random.default_rng(w + 3 * cw + 7 * whole + len(kind))
    frames = [performer(rng, w, h, t=0.4 * i, jitter=0.015, whole_pixels=whole) for i in range(5)]
    char = performer(rng, cw, ch, t=2.0, jitter=0.04, whole_pixels=whole)
    for k in (*frames, char):  # nose, hips and ankles seen: measured nose to ankles, placed by the feet
        k[[0, 11, 12, 15, 16], 2] = rng.uniform(0.55, 1.0, 5)
    if kind == "no feet":  # the character's ankles below its image: placed by the neck
        char[[15, 16, 17, 18, 19, 20, 21, 22], 1] += 0.2 * ch
    elif kind == "far":  # the performer's ankles unsure: measured nose to hips, placed by the neck
        for f in frames:
            f[[15, 16], 2] = 0.3
    # A frame whose right hand hangs nearer the left wrist (the official swaps the hands).
    frames[3][112:133, :2] = frames[3][91:112, :2] + (3, 2)
    plan = plan_retarget(frames[0], w, h, CharacterPose(char, cw, ch))
    assert plan is not None
    official = official_retarget([f.copy() for f in frames], clip, char.copy(), canvas)
    inked = 0
    for n, (k, meta) in enumerate(zip(frames, official, strict=True)):
        pts = plan.apply(k)
        # The body as the official draws it, every point; the hands: the one drawn first hangs
        # from the right wrist (the backend's second hand), each point it keeps.
        assert np.array_equal(pts[:20, :2], meta.kps_body), n
        assert np.array_equal(pts[:20, 2], meta.kps_body_p), n
        for ours, theirs, p in (
            (pts[41:62], meta.kps_lhand, meta.kps_lhand_p),
            (pts[20:41], meta.kps_rhand, meta.kps_rhand_p),
        ):
            kept = np.asarray(p, np.float64) > 0
            assert np.array_equal(ours[:, 2] > 0, kept), n
            assert np.array_equal(ours[kept, :2], np.asarray(theirs[kept], np.float64)), n
        want = OFF.human_visualization.draw_aapose_by_meta_new(np.zeros((ch, cw, 3), np.uint8), meta)
        got = draw_on_canvas(pts, canvas, cw, ch, right_hand_first=True)
        inked += int(want.any(axis=2).sum())
        assert differing(got, want) == 0, n
    assert inked > 0
    # Placed by the feet where both show whole bodies (ankles seen and inside their images).
    inside = frames[0][[15, 16], 1].max() <= h and char[[15, 16], 1].max() <= ch
    assert plan.placed_by == ("feet" if kind == "whole" and inside else "neck")


def test_a_retargeted_job_draws_the_officials_frames_fitted_into_its_output(tmp_path):
    """build_conditioning with a character whose canvas (512x704) is not the output's (320x192):
    the official frames (drawn on the canvas) fitted into the output with padding."""
    import cv2

    w, h, canvas = 640, 480, (512, 704)
    rng = np.random.default_rng(5)
    frames = [performer(rng, w, h, t=0.5 * i) for i in range(4)]
    char = performer(rng, *canvas, t=1.0, jitter=0.03)
    for n in range(len(frames)):
        cv2.imwrite(str(tmp_path / f"clip_{n:04d}.png"), np.full((h, w, 3), 40, np.uint8))
    info = probe_clip(tmp_path / "clip_0000.png", fps=30.0)
    saved = {"frames": [{"keypoints": k.tolist()} for k in frames]}
    cond = build_conditioning(info, None, 320, 192, 64, saved=saved, character=CharacterPose(char, *canvas))
    official = official_retarget([f.copy() for f in frames], (w, h), char.copy(), canvas)
    assert cond.pose_canvas == canvas and cond.pose_right_hand_first
    for got, meta in zip(cond.pose_frames, official, strict=True):
        drawn = OFF.human_visualization.draw_aapose_by_meta_new(
            np.zeros((canvas[1], canvas[0], 3), np.uint8), meta
        )
        assert differing(got, OFF.utils.padding_resize(drawn, 192, 320)) == 0
    assert cond.retarget_ratios is not None
