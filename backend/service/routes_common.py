"""What every route group shares: who may call (``Access``), the parts of the running service
(``Service``), the error replies /openapi.json declares, and the per-user view of a job."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

from ..engines import Engines
from ..job.run_job import JobRunner
from ..model.model_store import ModelStore
from .job_store import JobStore

DEFAULT_UPLOAD_QUOTA = 50 << 30


@dataclass
class Access:
    """Who may call and from which names; what the caller's paths may reach."""

    tokens: dict[str, str]  # token -> user name
    # Users who see and cancel every job and may shut the backend down; the others, only their own.
    admins: set[str] = field(default_factory=lambda: {"default"})
    allowed_hosts: set[str] = field(default_factory=set)  # empty: any Host header
    # Remote use: input and output paths must lie under the uploads folder or one of these.
    confine_to: list[Path] | None = None
    upload_quota: int = DEFAULT_UPLOAD_QUOTA


@dataclass
class Service:
    """The parts the routes work on, made once by ``create_app``."""

    access: Access
    data_dir: Path
    model_dir: Path
    uploads: Path
    models: ModelStore
    store: JobStore
    engines: Engines
    runner: JobRunner
    worker: Any  # JobWorker, or the cluster's ClusterWorker (same interface)
    # Where a remote caller's paths may lead (uploads first); None on this machine.
    roots: list[Path] | None
    estimator_factory: Any = None
    clustered: bool = False


def error_reply(desc: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    401: error_reply("missing or wrong token"),
    421: error_reply("the Host header names another address"),
}
JOB_ERRORS = {**ERRORS, 404: error_reply("no such job (or another user's)")}


def sees(request: Request, st: Any) -> bool:
    return request.state.admin or st.user == request.state.user


def visible_job(service: Service, request: Request, job_id: str) -> Any:
    st = service.worker.status(job_id)
    # Another user's job answers as one that does not exist: its id tells them nothing.
    if st is None or not sees(request, st):
        raise HTTPException(404, f"no job {job_id[:80]}")
    return st
