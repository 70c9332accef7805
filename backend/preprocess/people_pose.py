"""Person boxes for the embedded estimator, from the BlazePose person detector that ships inside
the mediapipe wheel (``modules/pose_detection/pose_detection.tflite``), run through mediapipe's
own ``PoseDetectionCpu`` graph: nothing is downloaded.

Holistic uses this detector for one person; run on its own it reports everyone it sees. It keys
on the head and shoulders, so it finds people turned away, seated, or cut at the waist by the
frame edge, which OpenCV's HOG (``people_hog``, upright whole bodies only) misses. Its input is
224x224, and it finds people down to about a quarter of that: a frame is searched at three
scales (the whole frame, squares of its short side, and squares of half that), so people down
to about an eighth of a frame's height are found. ``benchmarks/bench_people.py`` measures it
against HOG.

Each detection gives the hip centre, the shoulder centre and a circle around the body, not a
body box: the box is built from the torso (hips to shoulders), whose proportions to the whole
body vary little, at ratios fitted on rendered figures whose joints are known.
"""

from __future__ import annotations

import numpy as np

# Box from the torso length t (hip centre to shoulder centre), measured on rendered figures:
# the top of the head is 1.75 t above the hips, the feet 1.7 t below, and a standing body with
# the arms loose is about 2.2 t wide.
UP, DOWN, HALF_WIDTH = 1.75, 1.7, 1.1
MIN_SCORE = 0.5  # the graph's own threshold; below it, detections are mostly clutter
# In the fine tiles, where the detector looks at the most background, a surer detection is
# asked: photos without anyone (skimage's rocket, motorcycle, Hubble field) gave 0.5-0.66
# there, people 0.7 and up.
FINE_SCORE = 0.7
# Tiles overlap by this share of their side, so a person about half a tile wide is whole in one.
OVERLAP = 0.35
# The finest tiles are no smaller than this (pixels): below, people are too small for a pose.
MIN_TILE = 160
# Two detections are one person when their hip centres are closer than this share of the torso.
SAME = 0.6

_GRAPH = """
input_stream: "image"
output_stream: "detections"
node {
  calculator: "PoseDetectionCpu"
  input_stream: "IMAGE:image"
  output_stream: "DETECTIONS:detections"
}
"""


def tiles(w: int, h: int, side: int, overlap: float = OVERLAP) -> list[tuple[int, int, int, int]]:
    """Squares of ``side`` covering a ``w`` x ``h`` frame, overlapping by ``overlap`` at least."""
    if side >= max(w, h):
        return [(0, 0, w, h)]

    def starts(length: int) -> np.ndarray:
        if side >= length:
            return np.array([0])
        n = int(np.ceil((length - side) / (side * (1 - overlap)))) + 1
        return np.linspace(0, length - side, n).round().astype(int)

    return [
        (int(x), int(y), int(min(w, x + side)), int(min(h, y + side))) for y in starts(h) for x in starts(w)
    ]


def pyramid(w: int, h: int) -> list[tuple[tuple[int, int, int, int], bool]]:
    """The whole frame, squares of its short side, and squares of half of it (where not too
    small): each level finds people from about a quarter of its side to nearly all of it.
    Each region comes with whether it is a fine one (where clutter is looked at most often)."""
    short = min(w, h)
    out = [((0, 0, w, h), False)]
    if short < max(w, h):
        out += [(t, False) for t in tiles(w, h, short)]
    if short // 2 >= MIN_TILE:
        out += [(t, True) for t in tiles(w, h, short // 2)]
    return out


class PeopleDetector:
    name = "mediapipe pose detector"

    def __init__(self, min_score: float = MIN_SCORE) -> None:
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python.solution_base import SolutionBase

        config = text_format.Parse(_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._graph = SolutionBase(graph_config=config, outputs=["detections"])
        self.min_score = min_score

    def close(self) -> None:
        self._graph.close()

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """(N, 5) boxes in frame pixels: x1, y1, x2, y2, score in (0, 1)."""
        h, w = rgb.shape[:2]
        return self._merge(rgb, pyramid(w, h))

    def detect_near(self, rgb: np.ndarray, box: np.ndarray, reach: float = 2.5) -> np.ndarray:
        """People around ``box`` only (a square ``reach`` times its height, where the detector
        sees them best): one detector run where the whole frame takes many. The square may
        reach past the frame's edge, filled grey: someone cut by the edge is then off the
        middle of the detector's view, as in the pictures it learnt from, and found more often."""
        h, w = rgb.shape[:2]
        side = int(max(reach * (box[3] - box[1]), reach * (box[2] - box[0]), 64))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
        if pad:
            padded = np.pad(np.asarray(rgb), ((pad, pad), (pad, pad), (0, 0)), constant_values=128)
            found = self._merge(padded, [((x0 + pad, y0 + pad, x0 + pad + side, y0 + pad + side), False)])
            found[:, :4] -= (pad, pad, pad, pad)
            found[:, [0, 2]] = found[:, [0, 2]].clip(0, w)
            found[:, [1, 3]] = found[:, [1, 3]].clip(0, h)
            return found[(found[:, 2] - found[:, 0] > 2) & (found[:, 3] - found[:, 1] > 2)]
        return self._merge(rgb, [((x0, y0, x0 + side, y0 + side), False)])

    def _merge(self, rgb: np.ndarray, regions: list[tuple[tuple[int, int, int, int], bool]]) -> np.ndarray:
        h, w = rgb.shape[:2]
        found = []  # (score, seen whole, hip, torso length, box, shoulder)
        for (x0, y0, x1, y1), fine in regions:
            for score, hip, shoulder in self._run(rgb[y0:y1, x0:x1]):
                if fine and score < FINE_SCORE:
                    continue
                hip, shoulder = hip + (x0, y0), shoulder + (x0, y0)
                torso = float(np.hypot(*(hip - shoulder)))
                if torso < 2:
                    continue
                box = _box(hip, shoulder, torso)
                # A body cut by a tile's edge (not the frame's) is a partial view, its hips
                # guessed: the same person whole in another tile is the better detection.
                cut = (
                    (box[0] < x0 and x0 > 0)
                    or (box[1] < y0 and y0 > 0)
                    or (box[2] > x1 and x1 < w)
                    or (box[3] > y1 and y1 < h)
                )
                found.append((score, not cut, hip, torso, box, shoulder))
        found.sort(key=lambda f: (not f[1], -f[0]))
        kept: list[tuple] = []
        for f in found:
            if any(_same(f, k) for k in kept):
                continue
            # A partial view whose hips fall on someone seen whole is a piece of them.
            if not f[1] and any(_inside(f[2], k[4]) for k in kept if k[1]):
                continue
            kept.append(f)
        if not kept:
            return np.zeros((0, 5))
        boxes = np.array([[*k[4], k[0]] for k in kept], dtype=np.float64)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        return boxes[(boxes[:, 2] - boxes[:, 0] > 2) & (boxes[:, 3] - boxes[:, 1] > 2)]

    def _run(self, rgb: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """(score, hip centre, shoulder centre) per detection, in ``rgb``'s pixels."""
        h, w = rgb.shape[:2]
        if h < 16 or w < 16:
            return []
        res = self._graph.process({"image": np.ascontiguousarray(rgb)})
        out = []
        for d in res.detections or []:
            score = float(d.score[0]) if d.score else 0.0
            if score < self.min_score:
                continue
            k = d.location_data.relative_keypoints
            # Keypoints: hip centre, a point on the body's circle, shoulder centre, a point on
            # the upper body's circle.
            out.append((score, np.array([k[0].x * w, k[0].y * h]), np.array([k[2].x * w, k[2].y * h])))
        return out


def _box(hip: np.ndarray, shoulder: np.ndarray, torso: float) -> np.ndarray:
    """The body's box, hung from the shoulders: on someone cut at the waist the detector guesses
    the hips (below the frame, or on whatever is there), the shoulders it sees."""
    cx = shoulder[0]
    return np.array(
        [
            cx - HALF_WIDTH * torso,
            shoulder[1] - (UP - 1) * torso,
            cx + HALF_WIDTH * torso,
            hip[1] + DOWN * torso,
        ]
    )


def _inside(p: np.ndarray, box: np.ndarray) -> bool:
    return bool(box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3])


def _same(a: tuple, b: tuple) -> bool:
    ta, tb = a[3], b[3]
    if max(ta, tb) > 2.0 * min(ta, tb):
        return False
    # Shoulders too: on someone cut at the waist, two views guess the hips apart.
    apart = min(float(np.hypot(*(a[2] - b[2]))), float(np.hypot(*(a[5] - b[5]))))
    return apart < SAME * min(ta, tb)
