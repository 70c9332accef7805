"""The finished windows of one job on disk, so a crashed or cancelled job resumes after them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Window files are written to a temporary name and renamed, so a crash mid-write never leaves a
# window that looks finished.
_FRAMES = "window_{:04d}.npy"
_TAIL = "window_{:04d}_tail.pt"


class WindowStore:
    """The finished windows of one job on disk, keyed by everything that shapes them."""

    def __init__(self, folder: Path, key: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file = self.folder / "key.json"
        text = json.dumps(key, sort_keys=True)
        if key_file.is_file() and key_file.read_text() != text:
            # Same folder, different inputs: what is there belongs to another job.
            for p in self.folder.iterdir():
                p.unlink()
        key_file.write_text(text)

    def has(self, index: int) -> bool:
        return (self.folder / _FRAMES.format(index)).is_file() and (
            self.folder / _TAIL.format(index)
        ).is_file()

    def save(self, index: int, frames: np.ndarray, tail: torch.Tensor) -> None:
        for name, write in (
            (_TAIL.format(index), lambda p: torch.save(tail.cpu(), p)),
            (_FRAMES.format(index), lambda p: np.save(p, frames)),
        ):
            tmp = self.folder / (name + ".part")
            with open(tmp, "wb") as f:
                write(f)
            tmp.replace(self.folder / name)

    def frames(self, index: int) -> np.ndarray:
        return np.load(self.folder / _FRAMES.format(index), mmap_mode="r")

    def tail(self, index: int) -> torch.Tensor:
        return torch.load(self.folder / _TAIL.format(index), weights_only=True)

    def finished(self, count: int) -> int:
        n = 0
        while n < count and self.has(n):
            n += 1
        return n

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
