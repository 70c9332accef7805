"""One backend per data folder: an OS lock on a file in it, held while the backend runs.

Two backends on one folder would load two models and fail each other's jobs; the
lock is the operating system's, so it goes with the process however that ends."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO


class FolderInUse(RuntimeError):
    pass


class FolderLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "backend.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held open for the backend's life
        try:
            _lock(f)
        except OSError:
            try:
                f.seek(0)
                holder = f.read().strip()
            except OSError:
                holder = ""
            f.close()
            try:
                info = json.loads(holder)
                who = f"pid {info.get('pid')}, port {info.get('port')}"
            except ValueError:
                who = "another process"
            raise FolderInUse(
                f"Another backend ({who}) already uses the data folder {self.path.parent}. "
                "Use that backend, stop it, or start this one with another --data-dir."
            ) from None
        self._file = f
        self.describe(port=None)

    def describe(self, port: int | None) -> None:
        """Record who holds the lock, for the message a second backend prints."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), "port": port}))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock on every platform
            self._file = None


def _lock(f: IO[str]) -> None:
    if sys.platform == "win32":
        import msvcrt

        # Lock one byte far past the text: Windows locks are mandatory, and the holder's pid
        # must stay readable for the message.
        f.seek(1 << 20)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
