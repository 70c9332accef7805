"""The job store: every job's request and status in SQLite, so a restarted backend still
lists them and the queue survives a crash.

The store survives what a shared disk does to a database: a lock held by another
program is waited out with backoff, a row that cannot be read is skipped and
reported, and the next job is claimed in one statement so no two workers can take it.
The running job's status lives in memory and reaches the database on each stage, so a
poll never waits on the disk and a slow disk never fails a job."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..protocol import INTERRUPTED_STAGE, JobRequest, JobStatus, RequestError

T = TypeVar("T")
# How long a statement waits for another program's lock before the store's own backoff.
SQLITE_BUSY_S = 2.0


class StoreUnavailable(RuntimeError):
    """The job database stayed locked or unwritable past every retry."""


class StoreDamaged(RuntimeError):
    """The job database file is not a database, or its pages are damaged."""


class JobStore:
    def __init__(self, db_path: Path, retry_s: float = 120.0) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.path = db_path
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self.bad_rows: list[str] = []  # ids of rows that could not be read, reported by health
        try:
            self._db = sqlite3.connect(
                str(db_path), check_same_thread=False, isolation_level=None, timeout=SQLITE_BUSY_S
            )
            self._open()
            # Its own connection, which gives up at once on a lock: health's view of the queue.
            self._peek = sqlite3.connect(
                str(db_path), check_same_thread=False, isolation_level=None, timeout=0
            )
            self._peek_lock = threading.Lock()
        except sqlite3.DatabaseError as exc:
            # OperationalError (a lock) is waited out in _retry; what reaches here is damage.
            raise self._damaged(exc) from None

    def _open(self) -> None:
        # A truncated file opens and answers the first queries; the check reads every page.
        check = self._retry(lambda: self._db.execute("PRAGMA quick_check").fetchall())
        if [tuple(r) for r in check] != [("ok",)]:
            raise sqlite3.DatabaseError("; ".join(str(r[0]) for r in check[:3]))
        self._retry(
            lambda: self._db.execute(
                "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created REAL, request TEXT, status TEXT)"
            )
        )
        columns = {r[1] for r in self._retry(lambda: self._db.execute("PRAGMA table_info(jobs)").fetchall())}
        if "state" not in columns:
            # The state as a column: the queue and its length are one indexed query, not a scan.
            self._retry(lambda: self._db.execute("ALTER TABLE jobs ADD COLUMN state TEXT"))
            for job_id, status in self._retry(
                lambda: self._db.execute("SELECT id, status FROM jobs").fetchall()
            ):
                st = self._parse(job_id, status)
                if st is not None:
                    self._retry(
                        lambda st=st: self._db.execute(
                            "UPDATE jobs SET state = ? WHERE id = ?", (st.state, st.id)
                        )
                    )
        if "owner" not in columns:
            # Jobs from before users were recorded belong to no user: admins see them.
            self._retry(lambda: self._db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT"))
        self._retry(
            lambda: self._db.execute("CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created)")
        )
        # A job that was running when the backend died cannot go on mid-step; its finished
        # windows are on disk, and submitting it again resumes after them.
        for job in self.list_state("running"):
            job.state, job.stage = "failed", INTERRUPTED_STAGE
            job.error = job.message = (
                "The backend stopped while this job ran. Submit it again: it resumes after its last finished window."
            )
            job.finished_at = time.time()
            self.save(job)

    def _retry(self, op: Callable[[], T]) -> T:
        """Run one database operation, waiting out locks with backoff for up to ``retry_s``."""
        deadline = time.monotonic() + self.retry_s
        wait = 0.05
        while True:
            try:
                with self._lock:
                    return op()
            except sqlite3.OperationalError as exc:
                if "malformed" in str(exc) or "not a database" in str(exc):
                    raise self._damaged(exc) from None
                if time.monotonic() > deadline:
                    raise StoreUnavailable(
                        f"The job database {self.path} stayed unavailable ({exc}). Close the program "
                        "that holds it, or check the disk."
                    ) from exc
                time.sleep(wait)
                wait = min(wait * 2, 2.0)
            except sqlite3.DatabaseError as exc:
                # Damaged under a running backend (replaced, truncated by a sync tool): said, not a 500.
                raise self._damaged(exc) from None

    def _damaged(self, exc: Exception) -> StoreDamaged:
        return StoreDamaged(
            f"The job database {self.path} is damaged ({exc}). Move it aside (rename it) and start "
            "the backend again: the jobs listed in it are lost, their results on disk are not."
        )

    def _parse(self, job_id: str, status: str) -> JobStatus | None:
        try:
            return JobStatus.from_json(json.loads(status))
        except (ValueError, TypeError) as exc:
            if job_id not in self.bad_rows:
                self.bad_rows.append(job_id)
                print(f"job database: skipping unreadable job {job_id}: {exc}", file=sys.stderr, flush=True)
            return None

    def add(self, req: JobRequest, user: str | None = None) -> JobStatus:
        now = time.time()
        st = JobStatus(id=uuid.uuid4().hex, created=now, updated=now, user=user)
        self._retry(
            lambda: self._db.execute(
                "INSERT INTO jobs (id, created, request, status, state, owner) VALUES (?, ?, ?, ?, ?, ?)",
                (st.id, now, json.dumps(req.to_json()), json.dumps(st.to_json()), st.state, user),
            )
        )
        return st

    def save(self, st: JobStatus, only_if: str | None = None) -> bool:
        """Write ``st``; with ``only_if``, only while the stored state is still that one."""
        st.updated = time.time()
        text = json.dumps(st.to_json())
        sql, args = "UPDATE jobs SET status = ?, state = ? WHERE id = ?", [text, st.state, st.id]
        if only_if is not None:
            sql += " AND state = ?"
            args.append(only_if)
        return self._retry(lambda: self._db.execute(sql, args).rowcount) > 0

    def get(self, job_id: str) -> JobStatus | None:
        row = self._retry(
            lambda: self._db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        return self._parse(job_id, row[0]) if row else None

    def request(self, job_id: str) -> JobRequest:
        row = self._retry(
            lambda: self._db.execute("SELECT request FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        try:
            return JobRequest.from_json(json.loads(row[0]))
        except ValueError as exc:
            raise RequestError(
                f"The stored request of job {job_id} cannot be read ({exc}); submit it again."
            ) from exc

    def list(
        self, limit: int | None = None, after: str | None = None, owner: str | None = None
    ) -> list[JobStatus]:
        """Jobs in submission order; ``after`` (a job id) and ``limit`` page through them;
        ``owner``: only that user's."""
        sql, args, where = "SELECT id, status FROM jobs", [], []
        if after:
            where.append("(created, id) > (SELECT created, id FROM jobs WHERE id = ?)")
            args.append(after)
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self._retry(lambda: self._db.execute(sql, args).fetchall())
        return [st for st in (self._parse(i, s) for i, s in rows) if st is not None]

    def list_state(self, state: str) -> list[JobStatus]:
        rows = self._retry(
            lambda: self._db.execute(
                "SELECT id, status FROM jobs WHERE state = ? ORDER BY created", (state,)
            ).fetchall()
        )
        return [st for st in (self._parse(i, s) for i, s in rows) if st is not None]

    def count_now(self, state: str) -> tuple[int | None, str]:
        """``count`` without waiting, and the database's state ("ok", "locked", "damaged"): health
        answers at once, saying so, instead of waiting out another program's lock."""
        if not self._peek_lock.acquire(timeout=1.0):  # held only for one indexed count
            return None, "locked"
        try:
            row = self._peek.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()
            return row[0], "ok"
        except sqlite3.OperationalError as exc:
            return None, "damaged" if "malformed" in str(exc) else "locked"
        except sqlite3.DatabaseError:
            return None, "damaged"
        finally:
            self._peek_lock.release()

    def count(self, state: str) -> int:
        return self._retry(
            lambda: self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]
        )

    def claim_next(self) -> JobStatus | None:
        """Take the oldest queued job and mark it running, in one statement."""
        now = time.time()

        def claim() -> tuple[str, str] | None:
            return self._db.execute(
                "UPDATE jobs SET state = 'running' WHERE id = "
                "(SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, id LIMIT 1) "
                "RETURNING id, status"
            ).fetchone()

        while True:
            row = self._retry(claim)
            if row is None:
                return None
            st = self._parse(*row)
            if st is None:
                # Unreadable: never run, never claimed again.
                self._retry(
                    lambda row=row: self._db.execute(
                        "UPDATE jobs SET state = 'failed' WHERE id = ?", (row[0],)
                    )
                )
                continue
            st.state, st.stage, st.message = "running", "starting", "Starting"
            st.started = now
            self.save(st)
            return st

    def request_ids(self, states: tuple[str, ...]) -> list[str]:
        marks = ",".join("?" * len(states))
        rows = self._retry(
            lambda: self._db.execute(f"SELECT request FROM jobs WHERE state IN ({marks})", states).fetchall()  # noqa: S608
        )
        return [r[0] for r in rows]
