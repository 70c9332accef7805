"""One job's progress: the stage and message the artist sees, the cancel check, and the ETA."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Report = Callable[..., None]

# Where each stage sits on the progress bar (preprocessing up to 15 %, windows up to 90 %).
PREPROCESS_START, PREPROCESS_SPAN = 0.02, 0.13
# Within preprocessing, by the pass's name: (where it starts, its share). The pose pass comes
# first, SAM2's mask pass (when it runs) next, the face (and mask) pass last.
PREPROCESS_PASSES = (("pose", 0.0, 0.45), ("masks", 0.45, 0.15), ("face", 0.6, 0.4))
WINDOWS_START, WINDOWS_SPAN = 0.15, 0.75


class Cancelled(Exception):
    pass


class JobProgress:
    def __init__(self, report: Report, cancel: threading.Event) -> None:
        self._report = report
        self._cancel = cancel
        self._windows = self._resumed = self._steps = 0
        self._steps_done = 0
        self._t_windows = 0.0

    @property
    def cancel_event(self) -> threading.Event:
        return self._cancel

    def check(self) -> None:
        """Raise Cancelled once the artist has asked to stop (checked per frame and per step)."""
        if self._cancel.is_set():
            raise Cancelled()

    def report(self, **fields: Any) -> None:
        self._report(**fields)

    def preprocessing(self, i: int, n: int, what: str) -> None:
        self.check()
        start, share = next(
            ((a, b) for name, a, b in PREPROCESS_PASSES if what.startswith(name)), (0.0, 0.45)
        )
        frac = start + share * (i / n)
        if i == n or i % 5 == 0:
            self._report(
                stage="preprocessing",
                progress=PREPROCESS_START + PREPROCESS_SPAN * frac,
                message=f"Preprocessing: {what} {i}/{n} frames",
            )

    def start_windows(self, windows: int, resumed: int, steps: int) -> None:
        self._windows, self._resumed, self._steps = windows, resumed, steps
        self._steps_done, self._t_windows = 0, time.perf_counter()
        self._report(
            stage="denoising",
            message=(
                f"Resuming after window {resumed} of {windows} (saved by an earlier run)"
                if resumed
                else f"Window 1 of {windows}, step 0 of {steps}"
            ),
            progress=WINDOWS_START + WINDOWS_SPAN * resumed / windows,
            window=resumed + 1 if resumed < windows else windows,
            windows=windows,
            step=0,
            steps=steps,
        )

    def on_step(self, window: int, n_windows: int, step: int, decoding: bool) -> None:
        """The window loop's hook after every step and at each decode; the ETA is the mean
        step time so far times the steps left in the windows still to make."""
        self.check()
        if not decoding:
            self._steps_done += 1
        total = (self._windows - self._resumed) * self._steps
        eta = (time.perf_counter() - self._t_windows) / max(self._steps_done, 1) * (total - self._steps_done)
        done = self._resumed * self._steps + self._steps_done
        self._report(
            stage="decoding" if decoding else "denoising",
            message=(
                f"Decoding window {window} of {n_windows}"
                if decoding
                else f"Window {window} of {n_windows}, step {step} of {self._steps}"
            )
            + (f" (resumed after window {self._resumed})" if self._resumed else ""),
            progress=WINDOWS_START + WINDOWS_SPAN * (done / (self._windows * self._steps)),
            window=window,
            windows=n_windows,
            step=step,
            steps=self._steps,
            eta_s=eta,
        )
