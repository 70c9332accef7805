"""End to end against the official preprocessing: a real clip file and the keypoints found on it
in, the frames the model reads out (pose, face crops, and in replace mode background and mask).

The backend runs its real build_conditioning on the clip file (PyAV) with an estimator that
gives fixed keypoints; the official runs its real ProcessPipeline.__call__ (process_pipepline.py,
animate with and without retarget_flag, and replace_flag) on the same decoded frames, with the
keypoints the backend ended up with (after its clean-up over time) in place of its pose model's,
and, in replace mode, the masks the backend's segmenter gave in place of SAM2's
(tests/official_oracle.py). Clips 1280x720, 1920x1080, 1080x1920 and 640x480 into outputs
1280x720, 832x480 and 720x1280.

The contract (backend/preprocess/conditioning.py): where the official output's size is the
output's, the frames are the official frames; elsewhere the official frames fitted into the
output with padding (pose and background linearly, the mask by nearest pixel, the background
blacked out under the fitted mask). In animate mode the official output is the character
image's size at the output's area: a character image of the output's size gives the output's
size, which is what the backend's output is; one case fits a portrait character into a
landscape output. In replace mode it is the clip's size at the output's area. Where the official
has no step the backend's inputs are handed over as the backend hands them over: keypoints
found on the clip are placed on the resized replace frame where the resize puts them, and the
segmenter's mask (clip size) is resized onto it linearly and cut at 0.5.

Goals: 0 differing pixels in pose frames, masks and backgrounds, face crops within 0.5 grey
levels on average, 0 frame-index mismatches."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from official_oracle import preprocess, run_official_preprocess
from test_official_preprocess import differing, performer, textured

from backend.preprocess.clip_reading import probe_clip
from backend.preprocess.conditioning import build_conditioning
from backend.preprocess.mask_shape import official_shape
from backend.preprocess.pose_format import official_size, padding_resize
from backend.preprocess.retarget import CharacterPose

OFF = preprocess()
CLIPS = [(1280, 720), (1920, 1080), (1080, 1920), (640, 480)]
OUTPUTS = [(1280, 720), (832, 480), (720, 1280)]
FACE = 512


class FixedEstimator:
    """The clip's keypoints, by clip frame: build_conditioning asks once per clip frame it reads,
    in order."""

    name = "fixed"

    def __init__(self, kps: list[np.ndarray], sources: list[int]) -> None:
        self._kps = kps
        self._order = iter(sorted(set(sources)))

    def estimate(self, frame: np.ndarray) -> np.ndarray:
        return self._kps[next(self._order)].copy()


class FixedMasks:
    """A segmenter giving the performer's mask of each model frame at the clip's size."""

    name = "fixed-masks"

    def __init__(self, masks: list[np.ndarray]) -> None:
        self._masks = masks

    def mask(self, frame: np.ndarray, index: int = 0) -> np.ndarray:
        return self._masks[index].astype(np.float32)

    def shape(self, prob: np.ndarray) -> np.ndarray:
        return official_shape(prob >= 0.5)

    def close(self) -> None:
        pass


def _body_mask(kps: np.ndarray, w: int, h: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    pts = np.clip(kps[[0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], :2], 0, [w - 1, h - 1]).astype(np.int32)
    cv2.fillConvexPoly(m, cv2.convexHull(pts), 1)
    return m


def _write_clip(path: Path, frames: list[np.ndarray], fps: int) -> list[np.ndarray]:
    """An H.264 .mp4 of ``frames``; the frames as decoded (what both sides read)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        for f in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(video.encode())
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """Per clip size: the file, its decoded frames and the keypoints found on each frame. The
    640x480 clip runs at 25 fps, so that a clip frame drives two model frames."""
    tmp = tmp_path_factory.mktemp("official_clips")
    out = {}
    for w, h in CLIPS:
        fps, n = (25, 4) if (w, h) == (640, 480) else (30, 3)
        path = tmp / f"clip_{w}x{h}.mp4"
        decoded = _write_clip(path, textured(w, h, n, seed=w), fps)
        rng = np.random.default_rng(w * h)
        kps = [performer(rng, w, h, t=0.35 * i, jitter=0.01) for i in range(n)]
        out[(w, h)] = (path, decoded, fps, kps, [_body_mask(k, w, h) for k in kps])
    return out


def _in_output(img: np.ndarray, out_w: int, out_h: int, nearest: bool = False) -> np.ndarray:
    """An official frame fitted into the output with the official padding_resize."""
    if img.shape[:2] == (out_h, out_w):
        return img
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return OFF.utils.padding_resize(img, out_h, out_w, interpolation=interp)


def _placement(w: int, h: int, out_w: int, out_h: int) -> tuple[int, int, int, int]:
    """Where the official replace resize puts a ``w`` x ``h`` frame: (width, height, left, top),
    read off the official resize of a white frame."""
    white = OFF.utils.resize_by_area(np.full((h, w, 1), 255, np.uint8), out_w * out_h, divisor=16)[:, :, 0]
    ys, xs = np.nonzero(white)
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1), int(xs.min()), int(ys.min())


CASES = [
    (clip, out, mode) for clip in CLIPS for out in OUTPUTS for mode in ("animate", "retarget", "replace")
]
CASES += [((1920, 1080), (1280, 720), "retarget portrait character")]


@pytest.mark.parametrize(
    "clip, out, mode", CASES, ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else v
)
def test_the_frames_the_model_reads_are_the_officials(tmp_path, clips, clip, out, mode):
    (w, h), (ow, oh) = clip, out
    path, decoded, fps, clip_kps, clip_masks = clips[clip]
    info = probe_clip(path)
    sources = info.model_sources(30.0)
    replace, retarget = mode == "replace", mode.startswith("retarget")
    char_w, char_h = (600, 900) if "portrait" in mode else (ow, oh)
    char_path = tmp_path / "character.png"
    cv2.imwrite(str(char_path), textured(char_w, char_h, 1, seed=char_h)[0][:, :, ::-1])
    canvas = official_size(char_w, char_h, ow, oh)  # the character image as the official resizes it
    char_kps = performer(np.random.default_rng(ow + char_w), *canvas, t=1.0, jitter=0.03)

    cond = build_conditioning(
        info,
        FixedEstimator(clip_kps, sources),
        ow,
        oh,
        FACE,
        replace=replace,
        character=CharacterPose(char_kps, *canvas) if retarget else None,
        segmenter=FixedMasks([clip_masks[s] for s in sources]) if replace else None,
    )
    used = cond.keypoints  # what the backend drew from: the estimator's, cleaned over time
    frame_size = official_size(w, h, ow, oh) if replace else (w, h)
    nw, nh, left, top = _placement(w, h, ow, oh)

    def detect(images, batch):
        if batch is None:  # the character image, before the clip is read
            assert images[0].shape[:2] == (canvas[1], canvas[0])
            return char_kps[None]
        assert images[0].shape[:2] == (frame_size[1], frame_size[0])
        found = [used[i].copy() for i in range(len(images))]
        if replace:  # found on the resized frame: where the resize put each point
            for k in found:
                k[:, 0] = k[:, 0] * nw / w + left
                k[:, 1] = k[:, 1] * nh / h + top
        return np.stack(found)

    def mask(n, image):  # the segmenter's mask handed over as the backend hands it over
        prob = clip_masks[sources[n]].astype(np.float32)
        return padding_resize(prob, image.shape[1], image.shape[0], cv2.INTER_LINEAR) >= 0.5

    official = run_official_preprocess(
        decoded,
        float(fps),
        char_path,
        tmp_path / "official",
        detect,
        mask,
        replace=replace,
        retarget=retarget,
        area=out,
    )
    pose, face = official["src_pose"], official["src_face"]

    index_mismatches = sum(a != b for a, b in zip(cond.sources, official["indices"], strict=False))
    index_mismatches += abs(len(cond.sources) - len(official["indices"]))
    pose_px = [
        differing(np.asarray(a), _in_output(b, ow, oh)) for a, b in zip(cond.pose_frames, pose, strict=True)
    ]
    face_levels = [
        float(np.abs(np.asarray(a, float) - b).mean()) for a, b in zip(cond.face_frames, face, strict=True)
    ]
    mask_px, bg_px = [], []
    if replace:
        for got_m, got_bg, off_m, off_bg in zip(
            cond.mask_frames, cond.background_frames, official["src_mask"], official["src_bg"], strict=True
        ):
            want_m = _in_output(off_m, ow, oh, nearest=True)[:, :, 0]
            want_bg = _in_output(off_bg, ow, oh).copy()
            want_bg[want_m > 0] = 0
            mask_px.append(differing(np.asarray(got_m)[:, :, None], want_m[:, :, None]))
            bg_px.append(differing(np.asarray(got_bg), want_bg))
        assert any(np.asarray(m).any() for m in cond.mask_frames)
    print(
        f"{mode} {w}x{h} -> {ow}x{oh} (official {pose[0].shape[1]}x{pose[0].shape[0]}): pose {pose_px} px, "
        f"face {np.round(face_levels, 3).tolist()} levels, mask {mask_px} px, background {bg_px} px, "
        f"indices {index_mismatches} off"
    )
    assert len(cond.pose_frames) == len(pose) == len(face) == len(sources)
    assert index_mismatches == 0
    assert all(np.asarray(p).any() for p in cond.pose_frames)
    assert pose_px == [0] * len(pose)
    assert max(face_levels) <= 0.5
    assert mask_px == bg_px == ([0] * len(pose) if replace else [])
