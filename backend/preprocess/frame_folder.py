"""Conditioning frames kept on disk as they are made and read back one at a time.

A 10-minute clip at 30 fps is 18,000 pose frames and 18,000 face crops: held in memory that
is tens of gigabytes; written as PNGs (the same files the job's result keeps) it is one frame
at a time, and the window loop reads only the frames of the window it is working on.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fast: these are intermediates


class FrameFolder(Sequence):
    def __init__(self, folder: Path, stem: str) -> None:
        self.folder = Path(folder)
        self.stem = stem
        self.folder.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def _path(self, i: int) -> Path:
        return self.folder / f"{self.stem}_{i + 1:06d}.png"

    def append(self, frame: np.ndarray) -> None:
        img = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".png", img, _PNG)
        if not ok:
            raise OSError(f"could not encode frame {self._count + 1} as PNG")
        # Written through Python rather than cv2.imwrite, whose result on a full disk is not
        # reliable: a short write raises here with the OS's reason.
        path = self._path(self._count)
        try:
            path.write_bytes(data.tobytes())
        except OSError as exc:
            raise OSError(f"could not write {path}: {exc.strerror or exc} (is the disk full?)") from exc
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._count))]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(i)
        img = cv2.imread(str(self._path(i)), cv2.IMREAD_UNCHANGED)
        return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def move_to(self, target: Path) -> None:
        """Hand the files to the job's result folder (a rename, not a copy)."""
        try:
            shutil.move(str(self.folder), str(target))
        except (shutil.Error, OSError) as exc:
            # Across disks the move is a copy, whose failures come as a list: one clear cause.
            raise OSError(f"could not move the frames into {target} (is the disk full?)") from exc
        self.folder = Path(target)
