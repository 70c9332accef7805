"""Reference clips read as Blender shows them: variable frame rate, rotation metadata, stream
start offsets, image sequences, and character images in unusual formats. Every clip is made
here with PyAV, each frame carrying its own index as a block pattern that survives
compression, so a test can tell exactly which frame it got."""

from __future__ import annotations

import hashlib
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from backend.preprocess.character_image import load_character
from backend.preprocess.clip_reading import (
    ClipError,
    clip_sha256,
    iter_frames_rgb,
    model_frame_sources,
    output_frame_sources,
    probe_clip,
)
from backend.protocol import RequestError

W, H, BITS, BLOCK = 128, 64, 7, 16
TIME_BASE = Fraction(1, 30000)  # holds 24, 30, 10 and 29.97 fps steps exactly


def _numbered_frame(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    for b in range(BITS):
        if i >> b & 1:
            img[:BLOCK, b * BLOCK : (b + 1) * BLOCK] = 255
    return img


def _frame_number(rgb: np.ndarray) -> int:
    return sum(1 << b for b in range(BITS) if rgb[:BLOCK, b * BLOCK : (b + 1) * BLOCK].mean() > 128)


def _write_clip(
    path: Path,
    times: list[float],
    frames: list[np.ndarray] | None = None,
    ccw_rotation: int = 0,
    audio_seconds: float = 0.0,
) -> Path:
    """An H.264 .mp4 whose frame i is shown at ``times[i]`` seconds (plus sound from 0 s)."""
    frames = frames if frames is not None else [_numbered_frame(i) for i in range(len(times))]
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30, options={"crf": "12"})
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.codec_context.time_base = TIME_BASE
        if ccw_rotation:
            video.set_display_rotation(ccw_rotation)
        audio = out.add_stream("aac", rate=48000) if audio_seconds else None
        for t, img in zip(times, frames, strict=True):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = round(t / TIME_BASE), TIME_BASE
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if audio is not None:
            for start in range(0, int(audio_seconds * 48000), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, start, Fraction(1, 48000)
                out.mux(audio.encode(chunk))
            out.mux(audio.encode())
    return path


def _mkv_with_timestamps(path: Path, ticks: list[int]) -> Path:
    """Intra-only frames whose presentation ticks (1/10 s) are exactly ``ticks``, however odd."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("mjpeg", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuvj420p"
        packets = []
        for i in range(len(ticks)):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 30, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            packets += video.encode(frame)
        packets += video.encode()
        for i, (packet, tick) in enumerate(zip(packets, ticks, strict=True)):
            # Decode order stays monotonic (muxers insist); only the display order is broken.
            packet.pts, packet.dts, packet.time_base = tick, i - len(ticks), Fraction(1, 10)
            out.mux(packet)
    return path


# 30 frames at 30 fps, then 30 at 10 fps: 1 s + 3 s.
VFR_TIMES = [i / 30 for i in range(30)] + [1.0 + k / 10 for k in range(30)]


def _shown_at(times: list[float], t: float) -> int:
    """The frame a player shows at ``t``: the last one that has started."""
    return max(i for i, start in enumerate(times) if start <= t + 1e-9)


def _blender_length(path: Path, rate: float) -> int:
    """A movie strip's length in Blender: the stream's declared duration at the rate."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return round(float(stream.duration * stream.time_base) * rate)


def test_variable_rate_clip_is_counted_as_blender_counts_it(tmp_path):
    """Frames are counted at the stream's nominal rate (a strip's fps in Blender), each one
    the frame shown at its moment; tests/test_strip_display.py compares with Blender's own."""
    clip = _write_clip(tmp_path / "vfr.mp4", VFR_TIMES)
    info = probe_clip(clip)
    assert info.variable_rate and info.fps == 30.0
    # The muxer declares 3.8 s, not the 4 s the frames span: Blender's strip is that long.
    assert info.frame_count == _blender_length(clip, 30.0)
    want = [_shown_at(VFR_TIMES, k / 30) for k in range(info.frame_count)]
    got = [_frame_number(rgb) for _, rgb in iter_frames_rgb(info)]
    assert got == want
    assert got[30] == 30 and got[33] == 31 and got[36] == 32

    # The model (30 fps) is driven at each moment by the frame shown then, and an output at
    # the scene's 30 fps lasts as long as the strip.
    sources = info.model_sources()
    assert sources == list(range(info.frame_count))
    out = output_frame_sources(info.frame_count, info.fps, len(sources), 30.0)
    assert [sources[k] for k in out] == list(range(info.frame_count))


def test_a_trimmed_and_sped_up_view_of_a_variable_rate_clip_keeps_its_timing(tmp_path):
    info = probe_clip(_write_clip(tmp_path / "vfr.mp4", VFR_TIMES))
    view = info.view(28, 12, speed=2.0)  # strip frames 28..39 (0.93 s to 1.3 s) in half the time
    assert view.frame_count == 12 and view.fps == 60.0
    sources = view.model_sources()
    assert sources == [0, 2, 4, 6, 8, 10]
    got = [_frame_number(rgb) for _, rgb in iter_frames_rgb(view, sources)]
    assert got == [_shown_at(VFR_TIMES, (28 + k) / 30) for k in sources] == [28, 30, 30, 31, 32, 32]


def test_opencv_misplaces_the_variable_rate_frames_this_reader_gets_right(tmp_path):
    """The measurement behind the change: a rate-only reader puts frame 30 near 1.9 s."""
    clip = _write_clip(tmp_path / "vfr.mp4", VFR_TIMES)
    cap = cv2.VideoCapture(str(clip))
    opencv_fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert 30 / opencv_fps > 1.5
    info = probe_clip(clip)
    assert info.decoded_index(30) == 30  # at 1.0 s
    assert info.decoded_index(57) == 39  # at 1.9 s


@pytest.mark.parametrize("container, fps", [("mp4", 24.0), ("mkv", 30000 / 1001)])
def test_constant_rate_clip_keeps_the_plain_rate_mapping(tmp_path, container, fps):
    # .mkv keeps timestamps in whole milliseconds: 29.97 fps steps 33 or 34 ms and is still constant.
    n = 100
    info = probe_clip(_write_clip(tmp_path / f"cfr.{container}", [i / fps for i in range(n)]))
    assert not info.variable_rate
    assert info.fps == pytest.approx(fps, rel=1e-3)
    assert info.model_sources() == model_frame_sources(n, info.fps)
    assert [_frame_number(f) for _, f in iter_frames_rgb(info, [0, 5, 5, 99])] == [0, 5, 5, 99]


def _tkhd_matrix(path: Path) -> tuple[int, ...]:
    """The first track's display matrix (a, b, c, d in 16.16), as stored in the .mp4."""
    data = path.read_bytes()
    at = data.index(b"tkhd") + 4
    version = data[at]
    skip = 4 + (8 + 8 + 4 + 4 + 8 if version == 1 else 4 + 4 + 4 + 4 + 4) + 8 + 8
    a, b, _u, c, d = struct.unpack(">5i", data[at + skip : at + skip + 20])
    return a, b, c, d


@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_rotated_clip_comes_out_upright_at_its_displayed_size(tmp_path, clockwise):
    upright = np.zeros((64, 32, 3), np.uint8)  # portrait, as the phone's user saw it
    upright[:16, :16] = 255  # marker in the top-left corner
    stored = np.ascontiguousarray(np.rot90(upright, clockwise // 90))  # as the sensor recorded it
    clip = _write_clip(tmp_path / f"rot{clockwise}.mp4", [0.0, 1 / 30], [stored] * 2, ccw_rotation=-clockwise)
    if clockwise == 90:
        # The fixture is what phones write for portrait footage: the 90 degree QuickTime matrix.
        assert _tkhd_matrix(clip) == (0, 1 << 16, -(1 << 16), 0)

    info = probe_clip(clip)
    assert (info.width, info.height) == (32, 64)
    frames = [f for _, f in iter_frames_rgb(info)]
    assert len(frames) == 2
    for frame in frames:
        assert frame.shape == (64, 32, 3)
        assert frame[2:14, 2:14].mean() > 200  # the marker is top-left
        assert max(frame[-14:-2, -14:-2].mean(), frame[2:14, -14:-2].mean(), frame[-14:-2, 2:14].mean()) < 40


def test_video_starting_after_the_sound_reports_the_offset(tmp_path):
    clip = _write_clip(tmp_path / "late.mp4", [0.5 + i / 30 for i in range(15)], audio_seconds=1.0)
    info = probe_clip(clip)
    assert info.video_start_offset_s == pytest.approx(0.5, abs=2e-3)
    # Frame times still count from the first picture: the model's first frame is the clip's first.
    assert not info.variable_rate and info.frame_count == 15
    assert _frame_number(next(iter_frames_rgb(info, [0]))[1]) == 0
    assert (
        probe_clip(
            _write_clip(tmp_path / "silent.mp4", [0.5 + i / 30 for i in range(3)])
        ).video_start_offset_s
        == 0
    )


def test_repeated_timestamps_are_refused_with_what_to_do(tmp_path):
    with pytest.raises(ClipError, match=r"frame 3 .*repeats the timestamp.*Re-encode"):
        probe_clip(_mkv_with_timestamps(tmp_path / "repeat.mkv", [0, 1, 2, 2, 3, 4]))


def test_timestamps_going_backwards_are_refused_with_what_to_do(tmp_path):
    clip = _mkv_with_timestamps(tmp_path / "back.mkv", [0, 1, 3, 2, 4, 5])
    with pytest.raises(ClipError, match=r"frame 3 \(0\.200 s\) goes back in time.*Re-encode"):
        probe_clip(clip)


def test_sound_only_file_is_refused_as_having_no_video(tmp_path):
    path = tmp_path / "voice.m4a"
    with av.open(str(path), "w") as out:
        audio = out.add_stream("aac", rate=48000)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 48000, 0
        out.mux(audio.encode(chunk))
        out.mux(audio.encode())
    with pytest.raises(ClipError, match="no video stream: it holds only sound"):
        probe_clip(path)


@pytest.mark.parametrize("content", [b"", b"not a movie at all" * 100])
def test_undecodable_file_is_refused_with_what_to_do(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(ClipError, match=r"broken\.mp4.*Convert it to H\.264"):
        probe_clip(path)


def _sequence(folder: Path, numbers, size=(W, H), name="plate_{:04d}.png") -> Path:
    folder.mkdir(exist_ok=True)
    for n in numbers:
        img = (
            cv2.resize(_numbered_frame(n), size, interpolation=cv2.INTER_NEAREST)
            if size != (W, H)
            else _numbered_frame(n)
        )
        cv2.imwrite(str(folder / name.format(n)), img[:, :, ::-1])
    return folder


def test_folder_of_numbered_images_is_a_clip_at_the_given_rate(tmp_path):
    folder = _sequence(tmp_path / "plate", range(1, 11))
    (folder / "notes.txt").write_text("not a frame")
    info = probe_clip(folder)
    assert (info.frame_count, info.width, info.height, info.fps) == (10, W, H, 30.0)
    assert [_frame_number(f) for _, f in iter_frames_rgb(info)] == list(range(1, 11))
    # One image names its sequence from that frame on, at the rate asked for.
    from_fifth = probe_clip(folder / "plate_0005.png", fps=24)
    assert (from_fifth.frame_count, from_fifth.fps) == (6, 24.0)
    view = from_fifth.view(1, 2)
    assert [_frame_number(f) for _, f in iter_frames_rgb(view)] == [6, 7]


def test_a_job_records_what_the_sequence_held(tmp_path):
    folder = _sequence(tmp_path / "plate", range(1, 4))
    before = clip_sha256(folder)
    assert clip_sha256(folder / "plate_0001.png") == before
    cv2.imwrite(str(folder / "plate_0002.png"), _numbered_frame(7))  # one frame re-rendered
    assert clip_sha256(folder) != before
    movie = _write_clip(tmp_path / "m.mp4", [0.0, 1 / 30])
    assert clip_sha256(movie) == hashlib.sha256(movie.read_bytes()).hexdigest()  # as for any file


def test_image_sequence_with_a_gap_names_the_missing_file(tmp_path):
    folder = _sequence(tmp_path / "plate", [1, 2, 3, 5, 6])
    with pytest.raises(ClipError, match=r"missing plate_0004\.png"):
        probe_clip(folder)
    with pytest.raises(ClipError, match=r"missing plate_0004\.png"):
        probe_clip(folder / "plate_0002.png")
    assert probe_clip(folder / "plate_0005.png").frame_count == 2  # past the gap: whole


def test_exr_frames_picked_as_a_file_point_to_the_image_strip_route(tmp_path):
    folder = tmp_path / "exr"
    folder.mkdir()
    for n in (1, 2):
        (folder / f"plate_{n:04d}.exr").write_bytes(b"v/1\x01 not read")
    for path in (folder, folder / "plate_0001.exr"):
        with pytest.raises(ClipError, match="image strip .* Active Strip"):
            probe_clip(path)


def test_image_sequence_with_mixed_sizes_names_the_first_odd_frame(tmp_path):
    folder = _sequence(tmp_path / "plate", [1, 2])
    _sequence(folder, [3, 4], size=(W // 2, H // 2))
    with pytest.raises(ClipError, match=r"plate_0003\.png is 64x32"):
        probe_clip(folder)


def test_sixteen_bit_sequence_frames_are_scaled_not_clipped(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    for n in (1, 2):
        cv2.imwrite(str(folder / f"deep.{n:03d}.png"), np.stack([ramp] * 3, axis=2))
    frame = next(iter_frames_rgb(probe_clip(folder)))[1]
    assert frame.dtype == np.uint8
    assert np.abs(frame[:, :, 0].astype(int) - np.round(ramp / 257)).max() <= 1
    assert (frame == 255).mean() < 0.05  # a clipping reader turns nearly all of it white


def test_sixteen_bit_grey_character_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    path = tmp_path / "grey16.png"
    cv2.imwrite(str(path), ramp)
    assert Image.open(path).mode.startswith("I")  # the file really is 16-bit grey
    rgb = np.asarray(load_character(path))
    assert rgb.shape == (16, 256, 3)
    assert np.abs(rgb[:, :, 1].astype(int) - np.round(ramp / 257)).max() <= 1
    assert (rgb == 255).mean() < 0.05


def test_exif_rotated_jpeg_character_is_upright(tmp_path):
    upright = np.zeros((80, 40, 3), np.uint8)  # portrait, marker top-left
    upright[:20, :20] = 255
    # A camera held upright stores the sensor's landscape pixels and tags "rotate 90 CW to view".
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    stored.save(path, quality=95, exif=exif)
    rgb = np.asarray(load_character(path))
    assert rgb.shape == (80, 40, 3)
    assert rgb[3:17, 3:17].mean() > 200 and rgb[-17:-3, -17:-3].mean() < 40


def test_cmyk_and_palette_characters_keep_their_colours(tmp_path):
    cmyk = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(cmyk, quality=95)  # red ink
    r, g, b = np.asarray(load_character(cmyk)).reshape(-1, 3).mean(axis=0)
    assert r > 230 and g < 25 and b < 25

    palette = tmp_path / "flat.png"
    img = Image.new("P", (16, 16))
    img.putpalette([0, 0, 0, 20, 120, 220] + [0] * 762)
    img.paste(1, (0, 0, 16, 8))
    img.save(palette)
    rgb = np.asarray(load_character(palette))
    assert tuple(rgb[0, 0]) == (20, 120, 220) and tuple(rgb[15, 15]) == (0, 0, 0)


def test_transparent_character_is_still_refused(tmp_path):
    path = tmp_path / "cutout.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(path)
    with pytest.raises(RequestError, match="transparent"):
        load_character(path)
