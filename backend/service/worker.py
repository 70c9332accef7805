"""The worker: owns the device and runs queued jobs one at a time in submission order.

It cannot die silently: every exception in its loop is caught, the job is marked failed
with its cause, and the loop goes on; health reports whether it is alive."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..job.job_inputs import resolve_inputs
from ..job.run_job import Cancelled, JobRunner
from ..protocol import JobRequest, JobStatus, RequestError
from .job_store import JobStore, StoreUnavailable


class JobWorker:
    """Owns the device: takes queued jobs in submission order, one at a time."""

    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        uploads_dir: Path,
        after_job: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.uploads_dir = uploads_dir
        self.after_job = after_job
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancels: dict[str, threading.Event] = {}
        self._current: JobStatus | None = None
        self.last_error: str | None = None  # the worker's own last failure, for health
        self._thread = threading.Thread(target=self._loop, name="wan-animate-worker", daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def current(self) -> JobStatus | None:
        return self._current

    def start(self) -> None:
        self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for ev in list(self._cancels.values()):
            ev.set()

    def submit(self, req: JobRequest, user: str | None = None) -> JobStatus:
        st = self.store.add(req, user)
        self._wake.set()
        return st

    def status(self, job_id: str) -> JobStatus | None:
        """The running job from memory (no disk wait), the others from the store."""
        cur = self._current
        if cur is not None and cur.id == job_id:
            return JobStatus.from_json(cur.to_json())
        return self.store.get(job_id)

    def cancel(self, job_id: str) -> JobStatus | None:
        cur = self._current
        if cur is not None and cur.id == job_id:
            self._cancels.setdefault(job_id, threading.Event()).set()
            cur.message = "Cancelling…"
            return JobStatus.from_json(cur.to_json())
        st = self.store.get(job_id)
        if st is None or st.finished:
            return st
        if st.state == "queued":
            st.state = st.stage = "cancelled"
            st.message = "Cancelled before it started"
            st.finished_at = time.time()
            if self.store.save(st, only_if="queued"):
                return st
            return self.cancel(job_id)  # the worker took it in the meantime
        return st

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            while not self._stop.is_set():
                try:
                    job = self.store.claim_next()
                except Exception as exc:  # noqa: BLE001 - the worker outlives a bad disk
                    self.last_error = f"could not read the queue: {exc}"
                    traceback.print_exc()
                    time.sleep(1.0)
                    break
                if job is None:
                    break
                self._run(job)
                if self.after_job is not None:
                    try:
                        self.after_job()
                    except Exception:  # noqa: BLE001 - housekeeping must never stop the queue
                        traceback.print_exc()

    def _run(self, st: JobStatus) -> None:
        self._current = st
        cancel = self._cancels.setdefault(st.id, threading.Event())
        report = stage_reporter(self.store, st)

        try:
            req = self.store.request(st.id)
            inputs = resolve_inputs(req, self.uploads_dir)
            result = self.runner.run(st.id, req, inputs, report, cancel)
            st.state = st.stage = "done"
            st.progress, st.eta_s = 1.0, 0.0
            st.result_dir, st.frame_count, st.fps = result["result_dir"], result["frame_count"], result["fps"]
            st.message = f"Done: {st.frame_count} frames" + "".join(
                f"; note: {w}" for w in result.get("warnings", ())
            )
        except Exception as exc:  # noqa: BLE001 - any failure must reach the artist, not kill the worker
            record_failure(st, exc)
        st.finished_at = time.time()
        self._cancels.pop(st.id, None)
        try:
            self.store.save(st)
        except Exception as exc:  # noqa: BLE001 - the job's outcome stays visible from memory
            self.last_error = f"could not record job {st.id}: {exc}"
            traceback.print_exc()
            self._wait_and_save(st)
        self._current = None

    def _wait_and_save(self, st: JobStatus) -> None:
        """Keep serving the finished job from memory until the database takes it."""
        while not self._stop.is_set():
            try:
                self.store.save(st)
                self.last_error = None
                return
            except Exception:  # noqa: BLE001
                time.sleep(2.0)


def stage_reporter(store: JobStore, st: JobStatus) -> Callable[..., None]:
    """A job's progress callback: fields go onto ``st`` (served from memory); the database
    hears of each new stage only, and a busy database never stops the job."""
    last_stage = [st.stage]

    def report(**fields: Any) -> None:
        for k, v in fields.items():
            setattr(st, k, v)
        st.updated = time.time()
        if st.stage != last_stage[0]:
            last_stage[0] = st.stage
            try:
                store.save(st)
            except StoreUnavailable:
                traceback.print_exc()

    return report


def record_failure(st: JobStatus, exc: BaseException) -> None:
    """The job's outcome for an exception, in words the artist can act on (also used by the
    cluster's head for failures that happened on a worker node)."""
    if isinstance(exc, Cancelled):
        st.state = st.stage = "cancelled"
        st.message = "Cancelled; no frames were kept"
    elif isinstance(exc, (RequestError, ValueError, FileNotFoundError)):
        st.state, st.stage = "failed", "failed"
        st.error = st.message = str(exc)
    elif isinstance(exc, OSError):
        st.state, st.stage = "failed", "failed"
        st.error = st.message = f"The job could not write its files: {exc}. Check the free space of the disk."
    else:
        st.state, st.stage = "failed", "failed"
        st.error = f"{type(exc).__name__}: {exc}"
        st.message = f"The job failed: {st.error}. See the backend log for details."
        if exc.__traceback__ is not None:
            traceback.print_exception(exc)
