"""Health (what a client polls to know the backend is up and can run a job, cluster included)
and shutdown."""

from __future__ import annotations

import os
import shutil
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from .. import __version__
from ..protocol import API_PREFIX, HealthReply
from .routes_common import ERRORS, Service, error_reply, sees


def add_health_routes(app: FastAPI, service: Service) -> None:
    limiter: list[Any] = []  # a limiter of its own, made on the loop at the first call

    @app.get(f"{API_PREFIX}/health", responses=ERRORS)
    async def health(request: Request) -> dict:
        # Threads of its own: requests waiting out a database lock in the shared pool (40 at
        # most) never queue health behind them.
        import anyio

        if not limiter:
            limiter.append(anyio.CapacityLimiter(4))
        reply = await anyio.to_thread.run_sync(read_health, service, request, limiter=limiter[0])
        return reply.to_json()

    @app.post(
        f"{API_PREFIX}/shutdown", responses={**ERRORS, 403: error_reply("only an admin may stop the backend")}
    )
    def shutdown(request: Request) -> dict:
        if not request.state.admin:
            raise HTTPException(403, "only an admin (role admin in the tokens file) may stop the backend")
        app.state.shutdown.set()
        return {"status": "stopping"}


def read_health(service: Service, request: Request) -> HealthReply:
    loaded = service.models.loaded
    # Health reports on the default engine's weights.
    engine = service.engines.get("wan-animate")
    problem = engine.model_problem(service.model_dir) if loaded is None else None
    worker = service.worker
    current = worker.current
    queued, database = service.store.count_now("queued")
    ok = worker.alive and problem is None and worker.last_error is None and database == "ok"
    return HealthReply(
        status="ok" if ok else "degraded",
        database=database,
        version=__version__,
        pid=os.getpid(),
        worker_alive=worker.alive,
        worker_error=worker.last_error,
        model_dir=str(service.model_dir),
        model_dir_problem=problem,
        model_loaded=loaded is not None,
        device=loaded.device if loaded else None,
        queued=queued,
        # Another user's running job is "busy", not named.
        running=current.id if current and sees(request, current) else None,
        busy=current is not None,
        user=request.state.user,
        admin=request.state.admin,
        free_disk_bytes=shutil.disk_usage(service.data_dir).free,
        unreadable_jobs=len(service.store.bad_rows),
        cluster=worker.cluster_health() if service.clustered else None,
    )
