"""Reading reference clips frame by frame, and mapping between the clip's timing and the
model's native 30 fps so the output keeps the clip's length and timing.

Movies are read with PyAV (FFmpeg), as Blender reads them: frames are placed by their
presentation timestamps (so a variable-rate phone clip keeps its motion at the right
moments), the display matrix is applied (portrait footage comes out upright) unless the
request says the Blender it came from ignores it, and the video stream's start relative to
the sound is kept.

A clip's frames are counted as Blender's Sequencer counts them, so a strip's trim and speed
mean the same frames here. Measured in Blender 4.2, 4.5 and 5.0 (tests/test_strip_display.py):
a variable-rate movie is shown at its nominal rate (FFmpeg's guessed rate, the strip's
``fps``), frame ``k`` showing the last decoded frame whose timestamp is not after ``k / rate``,
for ``round(stream duration * rate)`` frames. A folder of numbered images, or one image of
such a sequence, is read as a clip at a given rate. OpenCV is used only for still images."""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import av.container
    import av.video.frame
    import av.video.stream

MODEL_FPS = 30.0
SEQUENCE_FPS = 30.0  # an image sequence carries no rate of its own
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})

# Timestamps are stored in a time base (often 1/1000 s in .mkv and .webm): a frame a
# rounding step late is still the frame meant for that moment.
TIME_TOLERANCE_S = 1e-3

_REENCODE = (
    "Re-encode it at a constant frame rate (for example render it from Blender's Video Sequencer, "
    "or `ffmpeg -i IN -fps_mode cfr -c:v libx264 OUT.mp4`) and use the new file."
)


_EXR = (
    "EXR frames hold linear light, not display colours, so they cannot be read as a clip directly. "
    "Add them to the Sequencer as an image strip and set Reference Clip to Active Strip: Blender then "
    "converts them through the scene's colour management, as it shows them."
)


class ClipError(ValueError):
    """A reference clip that cannot be used; the message says what to do."""


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """``path``, every symlink in it followed as it is now, lies in one of ``roots``."""
    try:
        r = Path(path).resolve()
    except (OSError, RuntimeError):
        return False
    return any(r == root or root in r.parents for root in roots)


def outside_message(label: str, path: Path | str) -> str:
    # The same words whether or not the file exists: the answer tells nothing of what is outside.
    return f"The {label} {path} is outside the folders this backend serves; upload it instead."


def _confine(path: Path, roots: Sequence[Path] | None, label: str) -> Path:
    """``path`` as it resolves now, refused outside ``roots`` (None: anywhere). Called as each
    file is opened: a symlink swapped after the request was checked points elsewhere by then."""
    if roots is None:
        return path
    if not inside(path, roots):
        raise ClipError(outside_message(label, path))
    return Path(path).resolve()


class InputTooLarge(ClipError):
    """An input whose header says it decodes to more than any job can use."""


def _check_size(width: int, height: int, what: str) -> None:
    from ..protocol import input_size_problem

    problem = input_size_problem(width, height, what)
    if problem:
        raise (InputTooLarge if width > 0 and height > 0 else ClipError)(problem)


def image_header_size(path: Path, what: str) -> tuple[int, int]:
    """An image's size from its header alone, refused (ClipError) when no job could use what it
    decodes to; Pillow's own decompression-bomb guard is caught as one of those."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            size = img.size
    except Image.DecompressionBombError as exc:
        raise InputTooLarge(f"The {what} {Path(path).name} is larger than the backend reads: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ClipError(f"Cannot read the {what} {Path(path).name}: {exc}. Save it as PNG or JPEG.") from exc
    _check_size(size[0], size[1], f"{what} {Path(path).name}")
    return size


def clip_size_problem(path: Path) -> str | None:
    """Why a clip decodes to more than a job can use, from its headers alone (a movie's stream,
    a sequence's first frame), in milliseconds; None when it does not or cannot be told yet (a
    file that does not open fails the job later with its own message)."""
    path = Path(path)
    try:
        if path.is_dir():
            image_header_size(_sequence_files(path)[0], "reference clip's frame")
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            image_header_size(path, "reference clip's frame")
        elif path.suffix.lower() != ".exr":
            with _open_movie(path) as container:
                if container.streams.video:
                    cc = container.streams.video[0].codec_context
                    if cc.width or cc.height:
                        _check_size(cc.width, cc.height, f"reference clip {path.name}")
    except InputTooLarge as exc:
        return str(exc)
    except (ClipError, OSError):
        return None
    return None


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    width: int  # as displayed: after the clip's rotation
    height: int
    # The rate frames are counted at: a variable-rate movie's nominal rate, as in Blender.
    fps: float
    frame_count: int
    first: int = 0  # a view on part of the clip starts at this clip frame
    # Variable rate: for each clip frame (Blender's count at ``fps``), the decoded frame shown
    # then. None: clip frame k is decoded frame k.
    shows: tuple[int, ...] | None = None
    rotation: int = 0  # quarter turns counter-clockwise that make decoded frames upright
    # Seconds from the earliest sound stream's start to the first video frame (positive: the
    # picture starts after the sound); 0 without sound. A property of the file, views keep it.
    video_start_offset_s: float = 0.0
    files: tuple[Path, ...] | None = None  # an image sequence's frames, in order
    # Remote use: the folders every frame must resolve into when it is read (None: anywhere).
    roots: tuple[Path, ...] | None = None

    @property
    def variable_rate(self) -> bool:
        return self.shows is not None

    def view(self, start: int, frames: int = 0, speed: float = 1.0) -> ClipInfo:
        """The frames a trimmed strip shows: ``frames`` from ``start`` (0: to the end), played at
        ``speed`` (a strip at 2x shows the same frames in half the time: twice the rate)."""
        if start >= self.frame_count:
            raise ClipError(
                f"The clip {self.path.name} has {self.frame_count} frames; a range starting at frame {start} "
                "is empty. Check the strip's trim."
            )
        n = self.frame_count - start if frames <= 0 else min(frames, self.frame_count - start)
        return replace(self, fps=self.fps * speed, frame_count=n, first=self.first + start)

    def decoded_index(self, k: int) -> int:
        """The decoded frame (or sequence file) shown at frame ``k`` of this view."""
        return self.shows[self.first + k] if self.shows is not None else self.first + k

    def model_sources(self, model_fps: float = MODEL_FPS) -> list[int]:
        """For each model frame, the frame of this view it is driven by."""
        return model_frame_sources(self.frame_count, self.fps, model_fps)


def probe_clip(
    path: Path, fps: float | None = None, apply_rotation: bool = True, roots: Sequence[Path] | None = None
) -> ClipInfo:
    """A movie, a folder of numbered images, or one image of a numbered sequence. ``fps``: the
    rate of an image sequence (default 30); movies carry their own timing and ignore it.
    ``apply_rotation`` False: a rotated movie's frames as stored, as Blender 4.2 shows them.
    ``roots``: the folders the clip and each frame must resolve into as they are opened."""
    path = Path(path)
    kept = tuple(roots) if roots is not None else None
    _confine(path, kept, "reference clip")
    if path.suffix.lower() == ".exr":
        raise ClipError(_EXR)
    if path.is_dir() or (path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()):
        return _probe_sequence(path, fps or SEQUENCE_FPS, kept)
    if not path.is_file():
        raise ClipError(f"Reference clip not found: {path}. Pick an existing movie file or image sequence.")
    info = replace(_probe_movie(path, kept), roots=kept)
    if apply_rotation or not info.rotation:
        return info
    w, h = (info.height, info.width) if info.rotation % 2 else (info.width, info.height)
    return replace(info, rotation=0, width=w, height=h)


def _open_movie(path: Path, roots: Sequence[Path] | None = None) -> av.container.InputContainer:
    import av

    real = _confine(path, roots, "reference clip")
    try:
        return av.open(str(real))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise ClipError(
            f"Cannot read the reference clip {path.name}: it is not a movie file FFmpeg can open "
            f"({getattr(exc, 'strerror', None) or exc}). It may be damaged or not a video. Convert it "
            "to H.264 .mp4 and try again."
        ) from exc


def _probe_movie(path: Path, roots: Sequence[Path] | None) -> ClipInfo:
    import av

    with _open_movie(path, roots) as container:
        if not container.streams.video:
            if container.streams.audio:
                raise ClipError(
                    f"The reference clip {path.name} has no video stream: it holds only sound. "
                    "Pick a movie with pictures."
                )
            raise ClipError(
                f"The reference clip {path.name} has no decodable video frames (it is empty or "
                "damaged). Pick a clip with at least one frame, or convert it to H.264 .mp4."
            )
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared = stream.codec_context
        if declared.width or declared.height:
            # Before the first frame is decoded: a 17 KB MJPG movie of 10000x16 took 198 s and 5 GB.
            _check_size(declared.width, declared.height, f"reference clip {path.name}")
        pts: list[int | None] = []
        rotation, width, height = 0, 0, 0
        try:
            # The container's frame count and rate are unreliable (variable rate, edit lists):
            # every frame is decoded once to learn when it is shown.
            for frame in container.decode(stream):
                if not pts:
                    rotation, width, height = _quarter_turns(frame, stream), frame.width, frame.height
                    _check_size(width, height, f"reference clip {path.name}")
                elif (frame.width, frame.height) != (width, height):
                    # A stream may change size mid-way; each new size is bounded too.
                    _check_size(frame.width, frame.height, f"reference clip {path.name}")
                pts.append(frame.pts)
        except av.FFmpegError as exc:
            where = "no frame could be decoded" if not pts else f"decoding failed after frame {len(pts)}"
            raise ClipError(
                f"Cannot read the reference clip {path.name}: {where} "
                f"({getattr(exc, 'strerror', None) or exc}). The file may be damaged or in a codec "
                "FFmpeg cannot decode. Convert it to H.264 .mp4 and try again."
            ) from exc
        if not pts or width <= 0 or height <= 0:
            raise ClipError(
                f"The reference clip {path.name} has no decodable video frames (it may be empty or "
                "damaged). Pick a clip with at least one frame, or convert it to H.264 .mp4."
            )
        rate = stream.guessed_rate or stream.average_rate
        stream_s = _stream_seconds(container, stream)
        audio_starts = [
            float(s.start_time * s.time_base)
            for s in container.streams.audio
            if s.start_time is not None and s.time_base is not None
        ]
        time_base = stream.time_base
    if rotation % 2:
        width, height = height, width
    known = [p for p in pts if p is not None]
    offset = 0.0
    if known and audio_starts and time_base is not None:
        offset = float(known[0] * time_base) - min(audio_starts)
    info = ClipInfo(
        path=path,
        width=width,
        height=height,
        fps=_usable_rate(rate),
        frame_count=len(pts),
        rotation=rotation,
        video_start_offset_s=round(offset, 6),
    )
    if len(known) < len(pts) or time_base is None or len(pts) < 2:
        return info  # no timestamps to go by: the stream's nominal rate
    return _timed(info, pts, time_base, rate, stream_s)


def _stream_seconds(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    """The video stream's declared duration (Blender's length is this times the rate), else
    the container's from the stream's start; None when neither is declared."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000 - float((stream.start_time or 0) * (stream.time_base or 0))
    return None


def _usable_rate(rate: Fraction | None) -> float:
    fps = float(rate or 0.0)
    return fps if 1.0 <= fps <= 240.0 else MODEL_FPS


def _timed(
    info: ClipInfo, pts: list[int | None], time_base: Fraction, rate: Fraction | None, stream_s: float | None
) -> ClipInfo:
    """Constant-rate clips keep the plain rate; others are counted at their nominal rate,
    each frame showing the decoded frame shown at its moment (Blender's mapping)."""
    ticks = np.asarray(pts, dtype=np.int64)
    steps = np.diff(ticks)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        k = int(bad[0]) + 1
        t_prev, t_here = float(ticks[k - 1] * time_base), float(ticks[k] * time_base)
        what = "repeats the timestamp of the frame before it" if steps[k - 1] == 0 else "goes back in time"
        raise ClipError(
            f"The reference clip {info.path.name} has broken frame timestamps: frame {k} ({t_here:.3f} s) "
            f"{what} (frame {k - 1} is at {t_prev:.3f} s), so the order its frames are shown in is "
            f"ambiguous. {_REENCODE}"
        )
    seconds = (ticks - ticks[0]).astype(np.float64) * float(time_base)
    intervals = np.diff(seconds)
    typical = float(np.median(intervals))
    tolerance = max(float(time_base), TIME_TOLERANCE_S) + 1e-6
    if float(np.max(np.abs(intervals - typical))) <= tolerance:
        # The stream's nominal rate is exact (30000/1001, not 29.97) but may be wrong: it is
        # kept only where it matches the timestamps over the whole clip.
        span, steps_n = float(seconds[-1]), len(seconds) - 1
        nominal = float(rate) if rate else 0.0
        fps = nominal if nominal and abs(steps_n / nominal - span) <= tolerance else steps_n / span
        return replace(info, fps=fps)
    fps = _usable_rate(rate)
    if not stream_s or stream_s <= 0:
        # No declared duration: the last frame is shown for as long as the one before it.
        stream_s = float(seconds[-1]) + float(intervals[-1])
    count = max(1, int(stream_s * fps + 0.5))  # Blender rounds the length half up
    times = seconds.tolist()
    shows = tuple(max(0, bisect_right(times, k / fps + TIME_TOLERANCE_S) - 1) for k in range(count))
    return replace(info, fps=fps, frame_count=count, shows=shows)


def _quarter_turns(frame: av.video.frame.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Counter-clockwise quarter turns that show ``frame`` as players do: the display matrix,
    else an old-style ``rotate`` tag (degrees clockwise)."""
    degrees = float(frame.rotation or 0)
    if not degrees:
        try:
            degrees = -float(stream.metadata.get("rotate", 0))
        except ValueError:
            degrees = 0.0
    return int(round(degrees / 90.0)) % 4


_NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<num>\d+)(?P<ext>\.[A-Za-z0-9]+)$")


def _probe_sequence(path: Path, fps: float, roots: tuple[Path, ...] | None) -> ClipInfo:
    from PIL import Image, UnidentifiedImageError

    files = _sequence_files(path)
    size = None
    for f in files:
        _confine(f, roots, "reference clip's frame")
        try:
            with Image.open(f) as img:  # the header only: cheap for thousands of frames
                here = img.size
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise ClipError(f"Cannot read {f.name} of the image sequence: {exc}. Render it again.") from exc
        if size is None:
            _check_size(here[0], here[1], f"image sequence's frame {f.name}")
            size = here
        elif here != size:
            raise ClipError(
                f"The image sequence starting at {files[0].name} mixes frame sizes: {f.name} is "
                f"{here[0]}x{here[1]}, the frames before it are {size[0]}x{size[1]}. Render all "
                "frames at one size."
            )
    assert size is not None
    if not 1.0 <= fps <= 240.0:
        raise ClipError(f"An image sequence's frame rate must be between 1 and 240 fps, not {fps}.")
    return ClipInfo(
        path=path,
        width=size[0],
        height=size[1],
        fps=float(fps),
        frame_count=len(files),
        files=tuple(files),
        roots=roots,
    )


def _sequence_files(path: Path) -> list[Path]:
    """The numbered images ``path`` names: a folder's one sequence, or the sequence of the
    given image from its number on. A missing number is an error, not a skipped frame: the
    clip's timing would shift from that frame on."""
    folder = path if path.is_dir() else path.parent
    groups: dict[tuple[str, str], dict[int, Path]] = {}
    for f in sorted(folder.iterdir()):
        m = _NUMBERED.match(f.name)
        if m and m["ext"].lower() in IMAGE_EXTENSIONS and f.is_file():
            same = groups.setdefault((m["stem"], m["ext"].lower()), {})
            n = int(m["num"])
            if n in same:
                raise ClipError(
                    f"The image sequence in {folder} has two frames numbered {n}: {same[n].name} and "
                    f"{f.name}. Remove one."
                )
            same[n] = f
    if path.is_dir():
        if not groups and any(f.suffix.lower() == ".exr" for f in folder.iterdir()):
            raise ClipError(_EXR)
        if not groups:
            raise ClipError(
                f"The folder {path} has no numbered images. Use a folder of frames named like "
                "plate_0001.png, or pick a movie file."
            )
        if len(groups) > 1:
            names = ", ".join(sorted(f"{stem}####{ext}" for stem, ext in groups))
            raise ClipError(
                f"The folder {path} holds several image sequences ({names}). Pick the first image of "
                "the one to use instead of the folder."
            )
        numbered = next(iter(groups.values()))
        start = min(numbered)
    else:
        m = _NUMBERED.match(path.name)
        if not m:
            raise ClipError(
                f"The image {path.name} is not numbered, so it is not a frame of a sequence. Name the "
                "frames like plate_0001.png, or pick a movie file."
            )
        numbered, start = groups[(m["stem"], m["ext"].lower())], int(m["num"])
    last = max(numbered)
    for n in range(start, last + 1):
        if n not in numbered:
            before = numbered[n - 1]
            m = _NUMBERED.match(before.name)
            assert m is not None
            width = len(m["num"]) if m["num"].startswith("0") else 0  # keep the sequence's padding
            missing = f"{m['stem']}{n:0{width}d}{m['ext']}"
            raise ClipError(
                f"The image sequence {before.name} ... {numbered[last].name} is missing {missing}: "
                "render or copy that frame, or pick the frames after the gap as their own sequence."
            )
    return [numbered[n] for n in range(start, last + 1)]


def clip_sha256(path: Path, roots: Sequence[Path] | None = None) -> str:
    """The content hash a job records for its clip: a movie file's bytes (as for any input
    file), or an image sequence's frame names and bytes in order."""
    path = Path(path)
    is_sequence = path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS
    files = _sequence_files(path) if is_sequence else [path]
    h = hashlib.sha256()
    for f in files:
        if is_sequence:
            h.update(f.name.encode() + b"\0")
        with open(_confine(f, roots, "reference clip's frame"), "rb") as data:
            for chunk in iter(lambda data=data: data.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def read_image_rgb8(path: Path, roots: Sequence[Path] | None = None) -> np.ndarray:
    """An image file as 8-bit RGB: 16-bit frames are scaled (65535 -> 255), not clipped;
    alpha is dropped, grey is repeated into the three channels."""
    img = cv2.imread(str(_confine(path, roots, "reference clip's frame")), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ClipError(f"Cannot read the image {path.name}; it may be damaged. Render it again.")
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def iter_frames_rgb(info: ClipInfo, indices: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index in the view, upright RGB frame), streaming. ``indices`` (ascending,
    repeats allowed) picks frames; memory stays flat whatever the clip's length."""
    picks = range(info.frame_count) if indices is None else indices
    if info.files is not None:
        frame, at = None, -1
        for target in picks:
            if target != at:
                frame, at = read_image_rgb8(info.files[info.decoded_index(target)], info.roots), target
            yield target, frame
        return
    with _open_movie(info.path, info.roots) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = container.decode(stream)
        pos, frame, raw = -1, None, None
        for target in picks:
            while pos < info.decoded_index(target):
                raw = next(decoded, None)
                if raw is None:
                    return
                pos += 1
                frame = None
            if frame is None:
                rgb = raw.to_ndarray(format="rgb24")
                frame = np.ascontiguousarray(np.rot90(rgb, info.rotation)) if info.rotation else rgb
            yield target, frame


def model_frame_sources(frame_count: int, fps: float, model_fps: float = MODEL_FPS) -> list[int]:
    """For each frame the model generates at ``model_fps``, the clip frame it is driven by:
    the nearest frame, which maps a clip of up to 30 fps to the model and back without moving
    any frame (a variable-rate clip is counted at its nominal rate, so this holds for it too)."""
    # The official preprocessing's rule, which the model was trained on: the count truncated, each
    # index rounded half to even (Python's round, numpy's too) from the model frame's time.
    n_model = max(1, int(frame_count / fps * model_fps))
    return [min(frame_count - 1, int(round((i / model_fps) * fps))) for i in range(n_model)]


def output_frame_sources(
    frame_count: int, fps: float, n_model: int, out_fps: float | None = None, model_fps: float = MODEL_FPS
) -> list[int]:
    """For each output frame at ``out_fps`` (default: the clip's rate, giving one
    frame per clip frame), the generated frame shown there. The output lasts as long
    as the clip, so it stays in sync with the clip's sound."""
    out_fps = out_fps or fps
    n_out = max(1, round(frame_count * out_fps / fps))
    return [min(n_model - 1, int(round(j * model_fps / out_fps))) for j in range(n_out)]
