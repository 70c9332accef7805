"""Jobs: persisted in SQLite (so a restarted backend still lists them) and run one
at a time on the device by a single worker thread, the rest waiting in order."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import traceback
import uuid
from pathlib import Path

from .api_types import JobRequest, JobStatus, RequestError
from .job_runner import Cancelled, JobRunner, resolve_inputs


class JobStore:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created REAL, request TEXT, status TEXT)"
        )
        # A job that was running when the backend died cannot go on mid-step; its finished
        # windows are on disk, and submitting it again resumes after them.
        for job in self.list():
            if not job.finished:
                if job.state == "running":
                    job.state, job.stage = "failed", "failed"
                    job.error = (
                        "The backend stopped while this job ran. Submit it again: "
                        "it resumes after its last finished window."
                    )
                    job.message = job.error
                self.save(job)

    def add(self, req: JobRequest) -> JobStatus:
        now = time.time()
        st = JobStatus(id=uuid.uuid4().hex, created=now, updated=now)
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?)",
                (st.id, now, json.dumps(req.to_json()), json.dumps(st.to_json())),
            )
        return st

    def save(self, st: JobStatus) -> None:
        st.updated = time.time()
        with self._lock:
            self._db.execute("UPDATE jobs SET status = ? WHERE id = ?", (json.dumps(st.to_json()), st.id))

    def get(self, job_id: str) -> JobStatus | None:
        with self._lock:
            row = self._db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobStatus.from_json(json.loads(row[0])) if row else None

    def request(self, job_id: str) -> JobRequest:
        with self._lock:
            row = self._db.execute("SELECT request FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobRequest.from_json(json.loads(row[0]))

    def list(self) -> list[JobStatus]:
        with self._lock:
            rows = self._db.execute("SELECT status FROM jobs ORDER BY created").fetchall()
        return [JobStatus.from_json(json.loads(r[0])) for r in rows]

    def next_queued(self) -> JobStatus | None:
        return next((j for j in self.list() if j.state == "queued"), None)


class JobWorker:
    """Owns the device: takes queued jobs in submission order, one at a time."""

    def __init__(self, store: JobStore, runner: JobRunner, uploads_dir: Path) -> None:
        self.store = store
        self.runner = runner
        self.uploads_dir = uploads_dir
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancels: dict[str, threading.Event] = {}
        self._current: str | None = None
        self._thread = threading.Thread(target=self._loop, name="wan-animate-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for ev in self._cancels.values():
            ev.set()

    def submit(self, req: JobRequest) -> JobStatus:
        st = self.store.add(req)
        self._wake.set()
        return st

    def cancel(self, job_id: str) -> JobStatus | None:
        st = self.store.get(job_id)
        if st is None or st.finished:
            return st
        if st.state == "queued" and job_id != self._current:
            st.state = st.stage = "cancelled"
            st.message = "Cancelled before it started"
            self.store.save(st)
            return st
        self._cancels.setdefault(job_id, threading.Event()).set()
        st.message = "Cancelling…"
        self.store.save(st)
        return st

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            while not self._stop.is_set():
                job = self.store.next_queued()
                if job is None:
                    break
                self._run(job)

    def _run(self, st: JobStatus) -> None:
        self._current = st.id
        cancel = self._cancels.setdefault(st.id, threading.Event())
        st.state, st.stage, st.message = "running", "starting", "Starting"
        st.started = time.time()
        self.store.save(st)

        def report(**fields) -> None:
            for k, v in fields.items():
                setattr(st, k, v)
            self.store.save(st)

        try:
            req = self.store.request(st.id)
            inputs = resolve_inputs(req, self.uploads_dir)
            result = self.runner.run(st.id, req, inputs, report, cancel)
            st.state = st.stage = "done"
            st.progress, st.eta_s = 1.0, 0.0
            st.result_dir, st.frame_count, st.fps = result["result_dir"], result["frame_count"], result["fps"]
            st.message = f"Done: {st.frame_count} frames"
        except Cancelled:
            st.state = st.stage = "cancelled"
            st.message = "Cancelled; no frames were kept"
        except (RequestError, ValueError, FileNotFoundError) as exc:
            st.state, st.stage = "failed", "failed"
            st.error = st.message = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the artist, not kill the worker
            st.state, st.stage = "failed", "failed"
            st.error = f"{type(exc).__name__}: {exc}"
            st.message = f"The job failed: {st.error}. See the backend log for details."
            traceback.print_exc()
        finally:
            st.finished_at = time.time()
            self._current = None
            self._cancels.pop(st.id, None)
            self.store.save(st)
