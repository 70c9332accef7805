"""Whole-body pose and face landmarks from mediapipe's bundled Holistic models
(offline, CPU), mapped onto COCO-WholeBody's 133 points.

Mapping notes (what mediapipe lacks and how it is derived):
- body: COCO points 0-16 map 1:1 to mediapipe Pose landmarks.
- feet: mediapipe has one toe point (foot_index) per foot, so COCO's big toe and
  small toe both take it; the heel maps 1:1.
- face: the 68 iBUG landmarks are taken from the 468-point face mesh by a fixed
  index table; they only place the face crop.
- hands: mediapipe's 21 hand points are in OpenPose order already.
Hands and face carry no per-point confidence in mediapipe: found means 1.0.

Several people: Holistic sees one person and does not let us say which. On clips, the pose
detector bundled with mediapipe, run over the whole frame in tiles (``people_pose``), finds
everyone and ``PersonTracker`` follows the performer (the largest at the start, or the one
picked) by position and clothes; once a frame shows two people, Holistic runs on a crop around
the followed box only, so it cannot drift to someone else. Where the frame's boxes miss the
performer, the detector looks again closely around where they should be.
"""

from __future__ import annotations

import numpy as np

from .performer_pick import box_look, colours, look_distance
from .person_track import PersonTracker, iou
from .pose_format import FACE_SLICE, LEFT_HAND_SLICE, NUM_WHOLEBODY, RIGHT_HAND_SLICE

# Margin around the followed box for Holistic's crop: its detector wants the whole head and
# spread arms, which a person box cuts.
CROP_MARGIN = 0.25
TORSO = [5, 6, 11, 12]  # shoulders and hips: where the body is, whatever the arms do
ALONE_DETECT_EVERY = 10  # frames between looks for other people while the performer is alone
LOOK_LIMIT = 0.6  # torso colour distance beyond which it is another person's clothes

# COCO-WholeBody body/foot index -> mediapipe Pose landmark index.
_SHOULDERS = (5, 6)  # COCO left and right shoulder
_COCO_FROM_MP_POSE = {
    0: 0, 1: 2, 2: 5, 3: 7, 4: 8, 5: 11, 6: 12, 7: 13, 8: 14, 9: 15, 10: 16,
    11: 23, 12: 24, 13: 25, 14: 26, 15: 27, 16: 28,
    17: 31, 18: 31, 19: 29, 20: 32, 21: 32, 22: 30,
}  # fmt: skip
# iBUG-68 landmark -> mediapipe face-mesh vertex.
_IBUG68_FROM_MESH = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip
assert len(_IBUG68_FROM_MESH) == 68


class MediapipeEstimator:
    """Stateful per clip: Holistic tracks the performer from frame to frame."""

    name = "mediapipe-holistic"

    def __init__(self, static_images: bool = False) -> None:
        """``boxes`` gets the followed person's box per frame, None while they are alone. The
        performer to follow, when the user chose one, is given by ``follow_from``."""
        try:
            from mediapipe.python.solutions import holistic
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "mediapipe is not installed in the backend environment. "
                "Run `python -m backend setup` (or the Set up backend button) again."
            ) from exc
        # Offline only model_complexity=1 is bundled in the wheel (0 and 2 download).
        self._holistic = holistic.Holistic(
            static_image_mode=static_images,
            model_complexity=1,
            smooth_landmarks=True,
            refine_face_landmarks=False,
        )
        self._detector = None
        if not static_images:
            from .people_pose import PeopleDetector

            self._detector = PeopleDetector()
            self.tracker = PersonTracker(None)
            self.boxes: list[np.ndarray | None] = []  # the followed box per frame
        self._crowded = False
        self._crop_size: np.ndarray | None = None  # Holistic's crop's size, kept steady
        self._look: np.ndarray | None = None  # the performer's torso colours
        self._single = None  # a still-image pose model for ``people``, made when first needed

    def close(self) -> None:
        self._holistic.close()
        if self._single is not None:
            self._single.close()
        if self._detector is not None:
            self._detector.close()

    def follow_from(self, frame: int, box: np.ndarray) -> None:
        """Follow the person in ``box`` from the ``frame``-th frame on (see PersonTracker)."""
        self.tracker.follow_from(frame, box)
        self._crowded = True  # a chosen person means others may be in view: crop to them

    def person_at(self, rgb: np.ndarray, x: float, y: float) -> np.ndarray | None:
        """The box of a person at pixel (``x``, ``y``) whom the look over the whole frame
        missed (cut by the frame's edge, in a crowd): a closer look around the point, at the
        scales of a person filling the frame's height down to a third of it."""
        if self._detector is None:
            return None
        h = rgb.shape[0]
        for tall in (0.8 * h, 0.4 * h):
            box = np.array([x - tall / 4, y - tall / 2, x + tall / 4, y + tall / 2])
            found = self._detector.detect_near(rgb, box, reach=1.6)
            inside = (found[:, 0] <= x) & (x <= found[:, 2]) & (found[:, 1] <= y) & (y <= found[:, 3])
            if inside.any():
                return found[np.flatnonzero(inside)[np.argmax(found[inside, 4])]]
        return None

    def people(self, rgb: np.ndarray) -> np.ndarray:
        """Everyone the detector sees in one frame, (N, 5) boxes, without touching the track.
        Where it sees nobody, a still-image pose model looks for one person (its own detector
        is the same, but its landmarks box a close-up better than the detector's torso does)."""
        boxes = self._detector.detect(rgb) if self._detector is not None else np.zeros((0, 5))
        if len(boxes):
            return boxes
        if self._single is None:
            from mediapipe.python.solutions import pose

            self._single = pose.Pose(static_image_mode=True, model_complexity=1)
        res = self._single.process(np.ascontiguousarray(rgb))
        if res.pose_landmarks is None:
            return boxes
        h, w = rgb.shape[:2]
        pts = np.array(
            [
                (p.x * w, p.y * h)
                for p in res.pose_landmarks.landmark
                if p.visibility >= 0.5 and _in_frame(p.x, p.y)
            ]
        )
        if len(pts) < 3:
            return boxes
        (x1, y1), (x2, y2) = pts.min(axis=0), pts.max(axis=0)
        # Landmarks are joints: the body reaches past them (the top of the head above the eyes).
        pad_x, pad_y = 0.15 * (x2 - x1) + 4, 0.15 * (y2 - y1) + 4
        body = [max(0.0, x1 - pad_x), max(0.0, y1 - 2 * pad_y), min(w, x2 + pad_x), min(h, y2 + pad_y), 0.5]
        return np.array([body], dtype=np.float64)

    def __enter__(self) -> MediapipeEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def estimate(self, rgb: np.ndarray) -> np.ndarray:
        """One RGB frame -> (133, 3) keypoints in pixels; all-zero when nobody is found."""
        if self._detector is None:
            return self._landmarks(rgb)
        h, w = rgb.shape[:2]
        if not self._crowded and len(self.boxes) % ALONE_DETECT_EVERY:
            # Alone so far: Holistic on the whole frame needs no box, and the detector costs
            # as much as Holistic; looking for a second person now and then is enough.
            self.boxes.append(None)
            return self._landmarks(rgb)
        people = self._near(rgb, self.people(rgb))
        looks = [box_look(rgb, b) for b in people] if self._crowded or len(people) > 1 else None
        box = self.tracker.update(people, looks)
        # A pick (follow_from) has set it already: the user saw several people.
        self._crowded = self._crowded or len(people) > 1
        # Alone, no box is recorded: Holistic saw the whole frame, and a box only sampled every
        # few frames must not crop anything downstream (the replace mask).
        self.boxes.append(box if self._crowded else None)
        if not self._crowded:
            return self._landmarks(rgb)
        if box is None:
            # The performer is gone and others are in view: nobody rather than someone else.
            return np.zeros((NUM_WHOLEBODY, 3), dtype=np.float64)
        if box[4] == 0 and _behind(box, people, 0.5):
            # Unseen where someone nearer stands: mostly hidden, their limbs would be guesses
            # (the keypoint filter bridges a short gap better).
            return np.zeros((NUM_WHOLEBODY, 3), dtype=np.float64)
        out = self._crop_landmarks(rgb, self._steady(box))
        if out is None:
            return np.zeros((NUM_WHOLEBODY, 3), dtype=np.float64)
        torso = out[TORSO]
        if (torso[:, 2] >= 0.5).all():
            look = _torso_colours(rgb, torso)
            # Clothes tell people apart where boxes and poses overlap: a torso that does not
            # look like the performer's is someone else in the crop.
            other = (
                self._look is not None and look is not None and look_distance(look, self._look) > LOOK_LIMIT
            )
            moved = None if other else self.tracker.recentre(float(torso[:, 0].mean()))
            if moved is None:
                if other:
                    self.tracker.reject()
                self.boxes[-1] = self.tracker.current
                return np.zeros((NUM_WHOLEBODY, 3), dtype=np.float64)
            # The track may run past the frame's edge with someone cut by it; what is recorded
            # (the replace mask's box) stays in the frame.
            self.boxes[-1] = np.concatenate([np.clip(moved[:4], 0, [w, h, w, h]), moved[4:]])
            if look is not None:
                self._look = look if self._look is None else 0.9 * self._look + 0.1 * look
        return out

    def _steady(self, box: np.ndarray) -> np.ndarray:
        """``box`` at a size that changes slowly: the detector's boxes breathe from frame to
        frame, and Holistic smooths its landmarks in the crop's coordinates, so a crop that
        changes size drags the skeleton (20 px on a 130 px figure, measured)."""
        size = np.array([box[2] - box[0], box[3] - box[1]], dtype=np.float64)
        if (
            self._crop_size is None
            or np.any(size > 1.5 * self._crop_size)
            or np.any(size < self._crop_size / 1.5)
        ):
            self._crop_size = size
        else:
            self._crop_size = 0.8 * self._crop_size + 0.2 * size
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        half = self._crop_size / 2
        return np.array([cx - half[0], cy - half[1], cx + half[0], cy + half[1]])

    def _crop_landmarks(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Holistic on a crop around ``box``, in frame pixels. Where the crop reaches past the
        frame's edge it is filled grey rather than cut: a body cut by the edge then is not also
        at the edge of Holistic's view, where its detector rarely finds anyone."""
        h, w = rgb.shape[:2]
        bw, bh = box[2] - box[0], box[3] - box[1]
        x0 = int(np.floor(box[0] - CROP_MARGIN * bw))
        y0 = int(max(0, np.floor(box[1] - CROP_MARGIN * bh)))
        x1 = int(np.ceil(box[2] + CROP_MARGIN * bw))
        y1 = int(min(h, np.ceil(box[3] + CROP_MARGIN * bh)))
        if min(x1, w) - max(x0, 0) < 8 or y1 - y0 < 8:
            return None
        crop = rgb[y0:y1, max(0, x0) : min(w, x1)]
        if x0 < 0 or x1 > w:
            crop = np.pad(crop, ((0, 0), (max(0, -x0), max(0, x1 - w)), (0, 0)), constant_values=128)
        out = self._landmarks(crop)
        placed = (out[:, :2] != 0).any(axis=1)
        out[placed, :2] += (x0, y0)
        outside = (out[:, 0] < 0) | (out[:, 0] > w)
        out[placed & outside, 2] = 0.0  # on the grey: out of the frame
        return out

    def _near(self, rgb: np.ndarray, people: np.ndarray) -> np.ndarray:
        """``people``, and whoever a closer look finds where the performer should be when no
        box is there: a small person the tiles cut, someone half behind another."""
        expected = self.tracker.expected()
        if expected is None or (len(people) and iou(expected, people).max() >= 0.3):
            return people
        new: list[np.ndarray] = []
        # Two scales: the performer at about two fifths and at three fifths of the detector's
        # view (a body cut by the frame's edge is found at the larger).
        for reach in (2.5, 1.6):
            near = self._detector.detect_near(rgb, expected, reach)
            new = [b for b in near if not len(people) or iou(b, people).max() < 0.5]
            if any(iou(expected, np.asarray(new).reshape(-1, 5)) >= 0.2):
                break
        return np.concatenate([people.reshape(-1, 5), np.asarray(new).reshape(-1, 5)]) if new else people

    def _landmarks(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        res = self._holistic.process(np.ascontiguousarray(rgb))
        out = np.zeros((NUM_WHOLEBODY, 3), dtype=np.float64)
        if res.pose_landmarks is not None:
            lm = res.pose_landmarks.landmark
            for coco, mp in _COCO_FROM_MP_POSE.items():
                p = lm[mp]
                out[coco] = (p.x * w, p.y * h, _in_frame(p.x, p.y) * float(p.visibility))
        if res.face_landmarks is None and (out[list(_SHOULDERS), 2] < 0.5).all():
            # Holistic's pose model, given no person, still places a head, confidently, on
            # texture (road markings in a real clip: nose, eyes and ears at visibility >= 0.5,
            # no face mesh, no shoulders), which drew a dot of a skeleton, cut "face" crops from
            # the road and put a replace mask there. A head without a face mesh or shoulders is
            # no one.
            out[:] = 0.0
        if res.face_landmarks is not None:
            lm = res.face_landmarks.landmark
            face = [(lm[i].x * w, lm[i].y * h, _in_frame(lm[i].x, lm[i].y)) for i in _IBUG68_FROM_MESH]
            out[FACE_SLICE] = face
        for sl, hand in (
            (LEFT_HAND_SLICE, res.left_hand_landmarks),
            (RIGHT_HAND_SLICE, res.right_hand_landmarks),
        ):
            if hand is not None:
                out[sl] = [(p.x * w, p.y * h, _in_frame(p.x, p.y)) for p in hand.landmark]
        return out


def _behind(box: np.ndarray, people: np.ndarray, share: float) -> bool:
    """Whether more than ``share`` of ``box`` is covered by a nearer person's box (taller, or
    standing lower in the frame: nearer the camera)."""
    from .person_track import intersection

    if not len(people):
        return False
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    covered = intersection(box, people) > share * area
    nearer = (people[:, 3] - people[:, 1] > 1.1 * (box[3] - box[1])) | (people[:, 3] > box[3])
    return bool((covered & nearer).any())


def _torso_colours(rgb: np.ndarray, torso: np.ndarray) -> np.ndarray | None:
    """Hue-saturation histogram of the middle of the torso (shoulders to hips)."""

    x0, x1 = np.sort(torso[:, 0])[[0, -1]]
    y0, y1 = np.sort(torso[:, 1])[[0, -1]]
    # The middle half: clear of the arms and the background at the sides.
    cx0, cx1 = int(x0 + 0.25 * (x1 - x0)), int(np.ceil(x1 - 0.25 * (x1 - x0)))
    cy0, cy1 = int(y0 + 0.2 * (y1 - y0)), int(np.ceil(y1 - 0.2 * (y1 - y0)))
    h, w = rgb.shape[:2]
    cx0, cy0, cx1, cy1 = max(cx0, 0), max(cy0, 0), min(cx1, w), min(cy1, h)
    return colours(rgb[cy0:cy1, cx0:cx1])


def _in_frame(x: float, y: float) -> float:
    return 1.0 if 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 else 0.0
