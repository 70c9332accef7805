"""The clip check: what a job with this request would find in its clip, answered in seconds
without queuing anything."""

from __future__ import annotations

import threading

from fastapi import FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ..protocol import API_PREFIX, CheckReply, RequestError
from .routes_common import Service
from .routes_jobs import job_body, parse_request, read_body

# One running, four waiting: more would hold the threads other requests run on.
MAX_CHECKS = 5


def add_check_route(app: FastAPI, service: Service) -> None:
    one_at_a_time = threading.Lock()  # a check shares the CPU with the running job
    in_flight = [0]  # counted on the event loop, so without a lock

    @app.post(f"{API_PREFIX}/check", **job_body())
    async def check(request: Request) -> dict:
        """What a job with this request would find in its clip, in seconds: who is followed, the
        warnings, and the checked frame annotated (PNG, base64). Nothing is queued."""
        body = await read_body(request)
        if in_flight[0] >= MAX_CHECKS:
            raise HTTPException(
                503,
                "the backend is busy with other clip checks; try again in a few seconds",
                {"Retry-After": "5"},
            )
        in_flight[0] += 1
        try:
            return (await run_in_threadpool(run_check, service, body, one_at_a_time)).to_json()
        finally:
            in_flight[0] -= 1


def run_check(service: Service, body: bytes, one_at_a_time: threading.Lock) -> CheckReply:
    from ..job.clip_check import check_clip
    from ..job.job_inputs import resolve_inputs
    from ..preprocess.clip_reading import ClipError

    req = parse_request(service, body)
    with one_at_a_time:
        try:
            return check_clip(
                req,
                resolve_inputs(req, service.uploads),
                service.model_dir,
                service.estimator_factory,
                service.runner.default_output,
                service.roots,
            )
        except ClipError as exc:
            raise RequestError(str(exc)) from exc
