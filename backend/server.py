"""The HTTP/JSON API (OpenAPI at /openapi.json). Every request must carry the
per-launch token: ``Authorization: Bearer <token>``."""

from __future__ import annotations

import hmac
import json
import os
import socket
import sys
import threading
import uuid
from pathlib import Path

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from . import __version__
from .api_types import API_PREFIX, JobRequest, RequestError
from .job_queue import JobStore, JobWorker
from .job_runner import JobRunner
from .model_store import ModelStore

MAX_UPLOAD_BYTES = 4 << 30


def create_app(
    token: str,
    data_dir: Path,
    model_dir: Path,
    device: str = "auto",
    estimator_factory=None,
    leader=None,
) -> FastAPI:
    data_dir = Path(data_dir)
    uploads = data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    models = ModelStore(device, leader)
    store = JobStore(data_dir / "jobs.sqlite3")
    runner = JobRunner(models, Path(model_dir), data_dir / "results", estimator_factory)
    worker = JobWorker(store, runner, uploads)
    app = FastAPI(
        title="Wan-Animate backend",
        version=__version__,
        description="Local backend for the Wan Animate Blender extension.",
    )
    app.state.worker = worker
    app.state.shutdown = threading.Event()
    expected = f"Bearer {token}".encode()

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        got = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(got, expected):
            return JSONResponse({"detail": "missing or wrong token"}, status_code=401)
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def bad_request(_request: Request, exc: RequestError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get(f"{API_PREFIX}/health")
    def health() -> dict:
        loaded = models.loaded
        queued = sum(1 for j in store.list() if j.state == "queued")
        return {
            "status": "ok",
            "version": __version__,
            "pid": os.getpid(),
            "model_dir": str(model_dir),
            "model_loaded": loaded is not None,
            "device": loaded.device if loaded else None,
            "queued": queued,
        }

    @app.post(f"{API_PREFIX}/uploads")
    async def upload(request: Request) -> dict:
        name = Path(request.headers.get("x-filename", "upload.bin")).name
        upload_id = f"{uuid.uuid4().hex}{Path(name).suffix.lower()}"
        size = 0
        with open(uploads / upload_id, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    f.close()
                    (uploads / upload_id).unlink()
                    raise HTTPException(413, "upload larger than 4 GiB")
                f.write(chunk)
        return {"upload_id": upload_id, "bytes": size}

    @app.post(f"{API_PREFIX}/jobs", status_code=201)
    def submit(payload: dict = Body(...)) -> dict:  # noqa: B008 - FastAPI's idiom
        req = JobRequest.from_json(payload)
        named = (
            ("character image", req.character_path),
            ("reference clip", req.clip_path),
            ("saved keypoints file", req.keypoints_path),
        )
        for label, p in named:
            if p and not Path(p).is_file():
                raise RequestError(f"The {label} was not found: {p}. Check the path, or upload the file.")
        return worker.submit(req).to_json()

    @app.get(f"{API_PREFIX}/jobs")
    def list_jobs() -> list[dict]:
        return [j.to_json() for j in store.list()]

    def _job(job_id: str):
        st = store.get(job_id)
        if st is None:
            raise HTTPException(404, f"no job {job_id}")
        return st

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}")
    def job_status(job_id: str) -> dict:
        return _job(job_id).to_json()

    @app.post(f"{API_PREFIX}/jobs/{{job_id}}/cancel")
    def cancel(job_id: str) -> dict:
        _job(job_id)
        return worker.cancel(job_id).to_json()

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}/files")
    def list_files(job_id: str) -> dict:
        st = _job(job_id)
        if st.state != "done" or not st.result_dir:
            raise HTTPException(409, f"job {job_id} has no results (state {st.state})")
        root = Path(st.result_dir)
        return {"files": sorted(str(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file())}

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}/files/{{rel:path}}")
    def fetch_file(job_id: str, rel: str):
        st = _job(job_id)
        if st.state != "done" or not st.result_dir:
            raise HTTPException(409, f"job {job_id} has no results (state {st.state})")
        root = Path(st.result_dir).resolve()
        target = (root / rel).resolve()
        if root not in target.parents or not target.is_file():
            raise HTTPException(404, f"no file {rel}")
        return FileResponse(target)

    @app.post(f"{API_PREFIX}/shutdown")
    def shutdown() -> dict:
        app.state.shutdown.set()
        return {"status": "stopping"}

    return app


def serve(
    host: str,
    port: int,
    data_dir: Path,
    model_dir: Path,
    token: str | None,
    ready_file: Path | None,
    device: str = "auto",
    parent_pid: int | None = None,
    leader=None,
) -> None:
    import secrets

    import uvicorn

    token = token or os.environ.get("WAN_ANIMATE_TOKEN") or secrets.token_urlsafe(32)
    app = create_app(token, data_dir, model_dir, device, leader=leader)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listen before announcing the port: clients may connect before uvicorn's loop runs.
    sock.listen(128)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    def watch_shutdown() -> None:
        app.state.shutdown.wait()
        server.should_exit = True

    threading.Thread(target=watch_shutdown, daemon=True).start()
    if parent_pid:
        from .parent_watch import watch_parent

        watch_parent(parent_pid, app.state.shutdown.set)
    app.state.worker.start()
    info = {"host": host, "port": actual_port, "pid": os.getpid(), "url": f"http://{host}:{actual_port}"}
    if ready_file:
        # Written atomically after the socket is bound: the add-on polls for it.
        tmp = Path(ready_file).with_suffix(".tmp")
        tmp.write_text(json.dumps({**info, "token": token}))
        os.replace(tmp, ready_file)
    print(f"Wan-Animate backend listening on {info['url']} (pid {info['pid']})", flush=True)
    if not os.environ.get("WAN_ANIMATE_TOKEN") and not ready_file:
        print(f"token: {token}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.worker.stop()
        if leader is not None:
            leader.stop()
        sys.stdout.flush()
