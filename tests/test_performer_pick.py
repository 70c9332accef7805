"""The performer pick's pure parts: a click in the Image Editor turned into the request's
point and frame, the tracker started on the picked person, and the warnings an artist gets
about the followed track."""

from __future__ import annotations

import numpy as np

from backend.preprocess.performer_pick import box_under, model_frame_of, track_warnings
from backend.preprocess.person_track import PersonTracker
from wan_animate_blender.core import performer_pick


def test_a_click_in_the_image_editor_becomes_fractions_from_the_top_left():
    assert performer_pick.point_from_uv(0.25, 0.8) == (0.25, 0.2)
    assert performer_pick.point_from_uv(1.2, 0.5) is None  # beside the image
    # Blender's image user: scene frame 30 of a movie started at frame 10 shows its frame 20.
    assert performer_pick.movie_frame_shown(30, 10, 0, 100) == 20
    assert performer_pick.movie_frame_shown(5, 10, 0, 100) == 0  # held at the ends
    assert performer_pick.movie_frame_shown(500, 10, 0, 100) == 99
    # A strip trimmed to start at movie frame 40: a pick on frame 52 is the range's frame 12.
    assert performer_pick.frame_in_range(52, 40) == 12
    assert performer_pick.frame_in_range(10, 40) == 0


def test_the_pick_lands_on_the_smallest_box_around_it_or_on_nobody():
    boxes = np.array([[0, 0, 100, 200, 0.9], [20, 20, 60, 120, 0.8]], float)
    assert box_under(boxes, 30, 30) == 1  # inside both: the nearer, smaller person
    assert box_under(boxes, 90, 150) == 0
    assert box_under(boxes, 150, 150) is None
    assert box_under(np.zeros((0, 5)), 1, 1) is None
    # Clip frame 7 at 12 fps behind 30 fps model frames [0, 0, 1, 1, 2, 2, 2, 3, ...].
    sources = [round(i * 12 / 30) for i in range(30)]
    assert sources[model_frame_of(sources, 7)] == 7 and sources[model_frame_of(sources, 7) - 1] < 7


def test_a_tracker_started_on_a_picked_person_sees_nobody_before_and_that_person_after():
    a = [10, 10, 50, 110, 0.9]
    b = [200, 10, 240, 110, 0.9]
    t = PersonTracker(None)
    t.follow_from(3, np.array(b))
    got = [t.update(np.array([a, b])) for _ in range(6)]
    assert got[:3] == [None, None, None]
    assert all(g is not None and g[0] == 200 for g in got[3:])


def _body(cx: float, cy: float, h: float = 100.0) -> np.ndarray:
    k = np.zeros((133, 3))
    # Nose, shoulders, hips, ankles: enough confident body points to count as found.
    for i, (dx, dy) in {0: (0, -0.45), 5: (-0.1, -0.3), 6: (0.1, -0.3), 11: (-0.08, 0), 12: (0.08, 0),
                        15: (-0.08, 0.5), 16: (0.08, 0.5)}.items():  # fmt: skip
        k[i] = (cx + dx * h, cy + dy * h, 0.9)
    return k


def test_the_artist_is_told_where_the_performer_is_lost_leaves_or_jumps():
    none = np.zeros((133, 3))
    sources = list(range(100))
    steady = [_body(100 + i, 200) for i in range(100)]
    assert track_warnings(steady, sources, 0.3) == []

    gap = steady[:30] + [none] * 20 + steady[50:]
    (w,) = track_warnings(gap, sources, 0.3)
    assert "lost from clip frame 30 to 49" in w

    leaves = steady[:60] + [none] * 40
    (w,) = track_warnings(leaves, sources, 0.3)
    assert "lost at clip frame 60 and not found again" in w

    jump = steady[:40] + [_body(400 + i, 200) for i in range(40, 100)]
    (w,) = track_warnings(jump, sources, 0.3)
    assert "jumps at clip frame 40" in w


def test_a_seed_on_a_clip_under_30_fps_counts_the_frames_the_estimator_sees():
    from backend.preprocess.performer_pick import update_index

    # 24 fps: model frames repeat some clip frames, the estimator sees each clip frame once.
    sources = [round(i * 24 / 30) for i in range(30)]
    m = 20
    assert update_index(sources, m) == len(set(sources[: m + 1])) - 1 == sources[m]
    assert update_index(list(range(10)), 7) == 7


def test_a_switch_to_someone_far_away_after_a_short_gap_is_a_jump():
    none = np.zeros((133, 3))
    sources = list(range(60))
    track = (
        [_body(100 + i, 200) for i in range(30)] + [none] * 5 + [_body(700 + i, 200) for i in range(35, 60)]
    )
    (w,) = track_warnings(track, sources, 0.3)
    assert "jumps at clip frame 35" in w
    # A real walk through a short gap is no jump.
    walk = [_body(100 + 5 * i, 200) if not 30 <= i < 35 else none for i in range(60)]
    assert track_warnings(walk, sources, 0.3) == []


def _look(rgb: tuple[int, int, int]) -> np.ndarray:
    from backend.preprocess.performer_pick import colours

    patch = np.zeros((20, 10, 3), np.uint8)
    patch[:] = rgb
    patch[::2, ::3] = (200, 200, 200)  # some texture, as clothes have
    return colours(patch)


RED_SHIRT, BLUE_SHIRT = _look((180, 30, 30)), _look((30, 40, 170))


def test_someone_stepping_onto_the_followed_box_is_not_taken_for_them():
    t = PersonTracker(None)
    me = np.array([100, 50, 140, 150, 0.9])
    for i in range(5):  # walking right, 4 px a frame
        got = t.update(me[None] + [4 * i, 0, 4 * i, 0, 0], [RED_SHIRT])
        assert got[4] > 0
    # Hidden behind someone in blue standing where they should be: a stand-in, not the other.
    other = np.array([118, 45, 162, 155, 0.9])
    for _ in range(3):
        got = t.update(other[None], [BLUE_SHIRT])
        assert got is not None and got[4] == 0.0  # score 0: the prediction stands in
    # Out again, boxed wider by the detector than before (no overlap to speak of): by the look.
    back = np.array([150, 40, 210, 160, 0.8])
    got = t.update(np.stack([other, back]), [BLUE_SHIRT, RED_SHIRT])
    assert got is not None and got[0] == 150


def test_after_a_long_absence_the_performer_is_found_again_by_their_look_not_nearness():
    t = PersonTracker(None, max_gap=5)
    me = np.array([100, 50, 140, 150, 0.9])
    t.update(me[None], [RED_SHIRT])
    stranger = np.array([110, 50, 150, 150, 0.9])  # where the performer left, dressed otherwise
    for _ in range(20):
        assert t.update(np.zeros((0, 5)), []) is None or t.current[4] == 0.0
    for _ in range(5):
        assert t.update(stranger[None], [BLUE_SHIRT]) is None
    assert t.lost
    # Back on the far side of the frame (from behind someone, through the frame's edge).
    far = np.array([600, 60, 638, 155, 0.9])
    got = t.update(np.stack([stranger, far]), [BLUE_SHIRT, RED_SHIRT])
    assert got is not None and got[0] == 600 and not t.lost
