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
        if not cv2.imwrite(str(self._path(self._count)), img, _PNG):
            raise OSError(f"could not write {self._path(self._count)} (is the disk full?)")
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
        shutil.move(str(self.folder), str(target))
        self.folder = Path(target)
