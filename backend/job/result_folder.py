"""Where a job's result goes: a hidden partial folder while it is written, renamed to a
name no earlier job used once complete, so nothing existing is written over and a crash
or a full disk never leaves a result that looks finished."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..protocol import RequestError
from .progress import Cancelled

PARTIAL_SUFFIX = ".partial"
FRAME_PATTERN = "frame_{:06d}.png"


def partial_result_dir(parent: Path, job_id: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    partial = parent / f".{job_id}{PARTIAL_SUFFIX}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    return partial


def remove_stale_partials(parent: Path) -> None:
    """Results a crash left half-written (one backend per data folder, so none is in use)."""
    for stale in parent.glob(f".*{PARTIAL_SUFFIX}") if parent.is_dir() else ():
        shutil.rmtree(stale, ignore_errors=True)


def publish_result(partial: Path, name: str, job_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "shot"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent = partial.parent
    for n in range(1000):
        candidate = parent / (f"{safe}_{stamp}_{job_id[:8]}" + (f"_{n}" if n else ""))
        if candidate.exists():
            continue
        try:
            # A rename onto an existing empty folder would succeed on POSIX: claim the name first.
            candidate.mkdir()
            candidate.rmdir()
            partial.rename(candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            if candidate.exists():
                continue
            raise OSError(f"could not rename the finished result to {candidate}: {exc}") from exc
    raise OSError(f"could not find a free result folder name in {parent}")


def free_bytes_needed(frames: int, width: int, height: int, conditioning_frames: int) -> int:
    """A generous estimate of a job's disk use: PNG output frames (incompressible at worst), its
    conditioning frames (pose, face, background, mask) and the finished windows kept for a resume."""
    frame = width * height * 3
    return int(frames * frame * 1.1 + conditioning_frames * (frame * 2.5 + 512 * 512 * 3)) + (64 << 20)


def check_free_space(folder: Path, need: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise RequestError(
            f"The output folder {folder} has {free / 1e9:.1f} GB free; this job needs about {need / 1e9:.1f} GB. "
            "Free some space, pick another output folder, or make a shorter or smaller shot."
        )


def write_frames(
    result: Path,
    frames: list[np.ndarray],
    order: list[int],
    cond,
    keypoints_text: str | None,
    cancel: threading.Event,
) -> None:
    """The output frames in clip order, the conditioning frames and the keypoints."""
    from ..preprocess.frame_folder import FrameFolder

    out = FrameFolder(result, "frame")  # frame_000001.png ...: the one PNG writer, every write checked
    for src in order:
        if cancel.is_set():
            raise Cancelled()
        out.append(frames[src])
    subfolders: tuple[tuple[str, Sequence[np.ndarray]], ...] = (
        ("pose", cond.pose_frames),
        ("face", cond.face_frames),
        ("background", cond.background_frames),
        ("mask", cond.mask_frames),
    )
    for sub, images in subfolders:
        if not len(images):
            continue
        if isinstance(images, FrameFolder):
            images.move_to(result / sub)  # already the result's files
            continue
        folder = FrameFolder(result / sub, sub)  # the same files, written now
        for img in images:
            folder.append(img)
    if keypoints_text is not None:  # None: driven by pose points alone, no detections to save
        (result / "keypoints.json").write_text(keypoints_text)
