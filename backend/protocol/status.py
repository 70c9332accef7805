"""A job's status as the backend reports it (GET /v1/jobs/<id>), and the states a job ends in."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

TERMINAL_STATES = ("done", "failed", "cancelled")
# The stage of a job that was running when its backend stopped: failed, and resumable by
# submitting it again.
INTERRUPTED_STAGE = "interrupted"


@dataclass
class JobStatus:
    id: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    stage: str = "queued"
    message: str = "Waiting in the queue"
    progress: float = 0.0
    window: int = 0
    windows: int = 0
    step: int = 0
    steps: int = 0
    eta_s: float | None = None
    error: str | None = None
    result_dir: str | None = None
    frame_count: int = 0
    fps: float = 0.0
    created: float = 0.0
    started: float | None = None
    finished_at: float | None = None
    updated: float = 0.0
    # Who submitted it (the tokens file's user name): only they and admins see the job.
    user: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobStatus:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES
