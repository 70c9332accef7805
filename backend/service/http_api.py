"""The HTTP/JSON API (OpenAPI at /openapi.json). Every request must carry a token,
``Authorization: Bearer <token>``, and name the address the backend listens on in
its Host header (so a web page that rebinds a DNS name to this machine gets nowhere)."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..engines import Engines
from ..job.run_job import JobRunner
from ..model.model_store import ModelStore
from ..protocol import (
    API_PREFIX,
    FOLDER_IN_USE_EXIT,
    MAX_JSON_DEPTH,
    MAX_REQUEST_BYTES,
    UPLOAD_ID,
    JobRequest,
    RequestError,
    job_request_schema,
    json_depth_problem,
)
from .job_store import JobStore, StoreDamaged, StoreUnavailable
from .worker import JobWorker

MAX_UPLOAD_BYTES = 4 << 30
# Uploads kept for jobs that may still need them; older ones nobody queued go.
UPLOAD_KEEP_S = 24 * 3600
DEFAULT_UPLOAD_QUOTA = 50 << 30
MAX_JOB_PAGE = 1000
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


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


def _error(desc: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


ERRORS = {401: _error("missing or wrong token"), 421: _error("the Host header names another address")}
JOB_ERRORS = {**ERRORS, 404: _error("no such job (or another user's)")}


def create_app(
    token: str | Access,
    data_dir: Path,
    model_dir: Path,
    device: str = "auto",
    estimator_factory=None,
    leader=None,
    cluster=None,
) -> FastAPI:
    """``cluster``: a factory ``(store, uploads, after_job) -> worker`` that runs jobs on a Ray
    cluster (service/cluster.py) instead of this machine's worker."""
    access = token if isinstance(token, Access) else Access(tokens={token: "default"})
    data_dir = Path(data_dir).resolve()
    uploads = data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    models = ModelStore(device, leader)
    store = JobStore(data_dir / "jobs.sqlite3")
    engines = Engines(models, Path(model_dir))
    engine = engines.get("wan-animate")  # health reports on the default engine's weights
    roots = None if access.confine_to is None else [uploads, *access.confine_to]
    runner = JobRunner(engines, Path(model_dir), data_dir / "results", estimator_factory, roots=roots)
    worker = (cluster or _local_worker(runner))(store, uploads, lambda: clean_uploads(uploads, store))
    if cluster:
        worker.roots = roots  # the head reads the files it ships to the nodes
    clean_uploads(uploads, store)
    app = FastAPI(
        title="Wan-Animate backend",
        version=__version__,
        description="Local backend for the Wan Animate Blender extension.",
    )
    app.state.worker = worker
    space = UploadSpace(uploads, access.upload_quota)
    app.state.shutdown = threading.Event()
    expected = [(f"Bearer {t}".encode(), user) for t, user in access.tokens.items()]

    class CheckHostAndToken:
        """Host and token checks as plain ASGI: a poll pays no per-request task or body copying
        (Starlette's decorator middleware costs a few milliseconds a request)."""

        def __init__(self, inner) -> None:
            self.inner = inner

        async def __call__(self, scope, receive, send) -> None:
            if scope["type"] != "http":
                return await self.inner(scope, receive, send)
            headers = dict(scope["headers"])
            if access.allowed_hosts:
                host = _host_name(headers.get(b"host", b"").decode("latin-1"))
                if host not in access.allowed_hosts:
                    detail = f"this backend does not answer to the name {host!r}"
                    return await JSONResponse({"detail": detail}, status_code=421)(scope, receive, send)
            got = headers.get(b"authorization", b"")
            # Every token is compared, so the time taken does not tell which one nearly matched.
            matches = [user for tok, user in expected if hmac.compare_digest(got, tok)]
            if not matches:
                return await JSONResponse({"detail": "missing or wrong token"}, status_code=401)(
                    scope, receive, send
                )
            scope.setdefault("state", {}).update(user=matches[0], admin=matches[0] in access.admins)

            async def send_with_allow(message) -> None:
                if message["type"] == "http.response.start" and message["status"] == 405:
                    # Starlette names only the first route that matched the path; list every method.
                    methods = sorted(
                        {m for r in app.routes if _matches_path(r, scope) for m in r.methods or ()}
                    )
                    kept = [(k, v) for k, v in message["headers"] if k.lower() != b"allow"]
                    message = {**message, "headers": [*kept, (b"allow", ", ".join(methods).encode())]}
                await send(message)

            await self.inner(scope, receive, send_with_allow)

    app.add_middleware(CheckHostAndToken)

    @app.exception_handler(RequestError)
    async def bad_request(_request: Request, exc: RequestError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StoreUnavailable)
    async def store_busy(_request: Request, exc: StoreUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(StoreDamaged)
    async def store_damaged(_request: Request, exc: StoreDamaged):
        return JSONResponse({"detail": str(exc)}, status_code=503)

    def sees(request: Request, st) -> bool:
        return request.state.admin or st.user == request.state.user

    health_threads: list = []  # a limiter of its own, made on the loop at the first call

    @app.get(f"{API_PREFIX}/health", responses=ERRORS)
    async def health(request: Request) -> dict:
        # Threads of its own: requests waiting out a database lock in the shared pool (40 at
        # most) never queue health behind them.
        import anyio

        if not health_threads:
            health_threads.append(anyio.CapacityLimiter(4))
        return await anyio.to_thread.run_sync(read_health, request, limiter=health_threads[0])

    def read_health(request: Request) -> dict:
        loaded = models.loaded
        problem = engine.model_problem(Path(model_dir)) if loaded is None else None
        free = shutil.disk_usage(data_dir).free
        current = worker.current
        queued, database = store.count_now("queued")
        ok = worker.alive and problem is None and worker.last_error is None and database == "ok"
        return {
            "status": "ok" if ok else "degraded",
            "database": database,
            "version": __version__,
            "pid": os.getpid(),
            "worker_alive": worker.alive,
            "worker_error": worker.last_error,
            "model_dir": str(model_dir),
            "model_dir_problem": problem,
            "model_loaded": loaded is not None,
            "device": loaded.device if loaded else None,
            "queued": queued,
            # Another user's running job is "busy", not named.
            "running": current.id if current and sees(request, current) else None,
            "busy": current is not None,
            "user": request.state.user,
            "admin": request.state.admin,
            "free_disk_bytes": free,
            "unreadable_jobs": len(store.bad_rows),
            **({"cluster": worker.cluster_health()} if cluster else {}),
        }

    @app.post(
        f"{API_PREFIX}/uploads",
        responses={
            **ERRORS,
            400: _error("an empty upload"),
            413: _error("larger than 4 GiB, or the upload quota is full"),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            "parameters": [
                {"name": "X-Filename", "in": "header", "required": False, "schema": {"type": "string"}}
            ],
        },
    )
    async def upload(request: Request) -> dict:
        suffix = Path(request.headers.get("x-filename", "upload.bin")).suffix.lower()
        if not UPLOAD_ID.match("0" * 32 + suffix):
            suffix = ""  # an odd extension is not worth refusing the file for
        upload_id = f"{uuid.uuid4().hex}{suffix}"
        part = uploads / f"{upload_id}.part"
        try:
            declared = max(0, int(request.headers.get("content-length", "0")))
        except ValueError:
            declared = 0
        # The space is reserved before the first byte is written, and grows under the same lock
        # as each chunk arrives: concurrent uploads cannot all pass a quota check made before any
        # of them wrote.
        held = await run_in_threadpool(space.reserve, declared)
        size, pending = 0, bytearray()
        try:
            f = await run_in_threadpool(open, part, "wb")
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > held:
                        held = space.grow(held, size - held)
                    pending += chunk
                    if len(pending) >= 1 << 20:
                        await run_in_threadpool(f.write, bytes(pending))
                        pending.clear()
                await run_in_threadpool(f.write, bytes(pending))
            finally:
                await run_in_threadpool(f.close)
            if size == 0:
                raise HTTPException(400, "the upload is empty: send the file's bytes as the request body")
            await run_in_threadpool(space.finish, part, uploads / upload_id, held)
            held = 0
        finally:
            # A client that went away mid-upload (or an error) leaves nothing behind.
            await run_in_threadpool(part.unlink, True)
            space.release(held)
        return {"upload_id": upload_id, "bytes": size}

    # The job request's body, as POST /jobs and POST /check both take it (declared once for /openapi.json).
    job_body = {
        "responses": {
            **ERRORS,
            400: _error("the request names the field to change"),
            413: _error("a body over 1 MiB"),
            503: _error("the job database is locked or damaged, or (check) other checks fill the queue"),
        },
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": job_request_schema()}},
            }
        },
    }

    async def read_body(request: Request) -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                raise HTTPException(413, f"a job request is at most {MAX_REQUEST_BYTES >> 10} KiB of JSON")
        return bytes(body)

    def parse_request(body: bytes) -> JobRequest:
        """The request checked, with the files it names: run off the event loop (it reads the disk)."""
        try:
            payload = json.loads(body)
        except RecursionError:
            raise RequestError(f"the body nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
        except ValueError as exc:
            raise RequestError(f"the body must be a JSON job request: {exc}") from exc
        problem = json_depth_problem(payload)
        if problem:
            raise RequestError(problem)
        req = JobRequest.from_json(payload)
        try:
            check_inputs(req, uploads, access.confine_to)
        except OSError as exc:  # a name too long for the file system, a path through a file...
            raise RequestError(f"a path in the request cannot be used: {exc.strerror or exc}") from None
        return req

    @app.post(f"{API_PREFIX}/jobs", status_code=201, **job_body)
    async def submit(request: Request) -> dict:
        body = await read_body(request)
        # The checks read files and the store may wait out another program's lock: off the loop,
        # so polls and health answer meanwhile.
        user = request.state.user
        return await run_in_threadpool(lambda: worker.submit(parse_request(body), user).to_json())

    check_lock = threading.Lock()  # one clip check at a time: it shares the CPU with the job
    checks_in_flight = [0]  # counted on the event loop, so without a lock
    max_checks = 5  # one running, four waiting: more would hold the threads other requests run on

    @app.post(f"{API_PREFIX}/check", **job_body)
    async def check(request: Request) -> dict:
        """What a job with this request would find in its clip, in seconds: who is followed, the
        warnings, and the checked frame annotated (PNG, base64). Nothing is queued."""
        from ..job.clip_check import check_clip
        from ..job.job_inputs import resolve_inputs
        from ..preprocess.clip_reading import ClipError

        body = await read_body(request)

        def run() -> dict:
            req = parse_request(body)
            with check_lock:
                try:
                    return check_clip(
                        req,
                        resolve_inputs(req, uploads),
                        Path(model_dir),
                        estimator_factory,
                        runner.default_output,
                        roots,
                    )
                except ClipError as exc:
                    raise RequestError(str(exc)) from exc

        if checks_in_flight[0] >= max_checks:
            raise HTTPException(
                503,
                "the backend is busy with other clip checks; try again in a few seconds",
                {"Retry-After": "5"},
            )
        checks_in_flight[0] += 1
        try:
            return await run_in_threadpool(run)
        finally:
            checks_in_flight[0] -= 1

    @app.get(f"{API_PREFIX}/jobs", responses={**ERRORS, 400: _error("after names no job the caller may see")})
    def list_jobs(
        request: Request,
        limit: int = Query(100, ge=1, le=MAX_JOB_PAGE),  # noqa: B008 - FastAPI's idiom
        after: str | None = Query(None, max_length=64),  # noqa: B008
    ) -> list[dict]:
        """The caller's jobs (an admin's: everyone's) in submission order, ``limit`` at a time;
        pass the last id as ``after`` for the next page."""
        seen = store.get(after) if after else None
        if after and (seen is None or not sees(request, seen)):
            # An empty page would read as "no more jobs".
            raise RequestError(
                f"after={after!r:.80} is no job's id: pass the id of the last job of the previous page"
            )
        owner = None if request.state.admin else request.state.user
        return [j.to_json() for j in store.list(limit=limit, after=after, owner=owner)]

    def _job(request: Request, job_id: str):
        st = worker.status(job_id)
        # Another user's job answers as one that does not exist: its id tells them nothing.
        if st is None or not sees(request, st):
            raise HTTPException(404, f"no job {job_id[:80]}")
        return st

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}", responses=JOB_ERRORS)
    def job_status(request: Request, job_id: str) -> dict:
        return _job(request, job_id).to_json()

    @app.post(f"{API_PREFIX}/jobs/{{job_id}}/cancel", responses=JOB_ERRORS)
    def cancel(request: Request, job_id: str) -> dict:
        _job(request, job_id)
        return worker.cancel(job_id).to_json()

    def _result_root(request: Request, job_id: str) -> Path:
        st = _job(request, job_id)
        if st.state != "done" or not st.result_dir:
            raise HTTPException(409, f"job {job_id} has no results (state {st.state})")
        return Path(st.result_dir).resolve()

    @app.get(
        f"{API_PREFIX}/jobs/{{job_id}}/files",
        responses={**JOB_ERRORS, 409: _error("the job has no results yet")},
    )
    def list_files(request: Request, job_id: str) -> dict:
        return {"files": result_files(_result_root(request, job_id))}

    @app.get(
        f"{API_PREFIX}/jobs/{{job_id}}/files/{{rel:path}}",
        responses={**JOB_ERRORS, 409: _error("the job has no results yet")},
    )
    def fetch_file(request: Request, job_id: str, rel: str):
        root = _result_root(request, job_id)
        target = _result_file(root, rel)
        if target is None:
            raise HTTPException(404, f"no file {rel[:200]}")
        return FileResponse(target)

    @app.post(
        f"{API_PREFIX}/shutdown", responses={**ERRORS, 403: _error("only an admin may stop the backend")}
    )
    def shutdown(request: Request) -> dict:
        if not request.state.admin:
            raise HTTPException(403, "only an admin (role admin in the tokens file) may stop the backend")
        app.state.shutdown.set()
        return {"status": "stopping"}

    return app


class UploadSpace:
    """The upload quota, held under one lock: what finished uploads take on disk plus what the
    uploads under way have reserved."""

    def __init__(self, folder: Path, quota: int) -> None:
        self.folder, self.quota = folder, quota
        self._lock = threading.Lock()
        self._reserved = 0
        self._disk = 0  # finished uploads, counted at the last reserve

    def _on_disk(self) -> int:
        total = 0
        for p in self.folder.iterdir():
            try:
                if p.suffix != ".part" and p.is_file():
                    total += p.stat().st_size
            except OSError:
                continue
        return total

    def _refuse(self, size: int) -> HTTPException:
        if size > MAX_UPLOAD_BYTES:
            return HTTPException(413, "upload larger than 4 GiB")
        return HTTPException(
            413,
            f"the backend's upload quota ({self.quota / (1 << 30):g} GiB) is full; old uploads go after 24 hours",
        )

    def reserve(self, n: int) -> int:
        """Hold ``n`` bytes (the declared length; 0 when unknown) or refuse at once."""
        if n > MAX_UPLOAD_BYTES:
            raise self._refuse(n)
        with self._lock:
            if self._on_disk() + self._reserved + n > self.quota:
                raise self._refuse(n)
            self._reserved += n
            self._disk = self._on_disk()
        return n

    def grow(self, held: int, more: int) -> int:
        """An upload past what it reserved: hold ``more`` too, or refuse (what it held stays
        held until its ``release``)."""
        if held + more > MAX_UPLOAD_BYTES:
            raise self._refuse(held + more)
        with self._lock:
            # Finished uploads change only in ``finish`` (under this lock) and cleaning, which
            # only frees space: the count made at the last reserve stays an upper bound.
            if self._disk + self._reserved + more > self.quota:
                raise self._refuse(held + more)
            self._reserved += more
        return held + more

    def finish(self, part: Path, final: Path, held: int) -> None:
        with self._lock:
            os.replace(part, final)
            self._reserved -= held
            self._disk += final.stat().st_size

    def release(self, held: int) -> None:
        if held:
            with self._lock:
                self._reserved -= held


def _local_worker(runner: JobRunner):
    return lambda store, uploads, after_job: JobWorker(store, runner, uploads, after_job=after_job)


def _matches_path(route: Any, scope: dict) -> bool:
    from starlette.routing import Match

    return getattr(route, "methods", None) is not None and route.matches(scope)[0] != Match.NONE


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def result_files(root: Path) -> list[str]:
    """The files a job wrote: a folder holding its own job.json is another job's result."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (here / d / "job.json").exists())
        out += [(here / n).relative_to(root).as_posix() for n in filenames]
    return sorted(out)


def _result_file(root: Path, rel: str) -> Path | None:
    """``rel`` inside the job's own result (not above it, not in a nested result), or None."""
    if "\x00" in rel or len(rel) > 1024:
        return None
    try:
        target = (root / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if root not in target.parents or not target.is_file():
        return None
    if any((d / "job.json").exists() for d in target.parents if root in d.parents):
        return None
    return target


# Each input a request may name: its label, and its path and upload fields.
INPUTS = (
    ("character image", "character_path", "character_upload"),
    ("reference clip", "clip_path", "clip_upload"),
    ("saved keypoints file", "keypoints_path", "keypoints_upload"),
    ("face image", "face_path", "face_upload"),
)


def check_inputs(req: JobRequest, uploads: Path, confine_to: list[Path] | None) -> None:
    """Files a request names exist (and, in remote use, lie where the backend may read: every
    frame of a sequence and every LoRA too, each checked again when the job opens it)."""
    from ..job.job_inputs import output_dir_problem, request_loras
    from ..preprocess.clip_reading import (
        IMAGE_EXTENSIONS,
        ClipError,
        _sequence_files,
        inside,
        outside_message,
    )

    roots = None if confine_to is None else [uploads.resolve(), *confine_to]
    for label, path_field, upload_field in INPUTS:
        p, up = getattr(req, path_field), getattr(req, upload_field)
        if p:
            if roots is not None and not inside(Path(p), roots):
                raise RequestError(outside_message(label, p))
            # A reference clip may also be a folder of numbered images.
            if not (Path(p).is_file() or (label == "reference clip" and Path(p).is_dir())):
                raise RequestError(f"The {label} was not found: {p}. Check the path, or upload the file.")
            if (
                roots is not None
                and label == "reference clip"
                and (Path(p).is_dir() or Path(p).suffix.lower() in IMAGE_EXTENSIONS)
            ):
                try:
                    frames = _sequence_files(Path(p))
                except ClipError:
                    frames = []  # the job names what is wrong with the sequence
                for f in frames:
                    if not inside(f, roots):
                        raise RequestError(outside_message("reference clip's frame", f))
        if up and not (uploads / up).is_file():
            raise RequestError(
                f"The upload {up} for the {label} is unknown (uploads go after 24 h); upload it again."
            )
        where = Path(p) if p else (uploads / up if up else None)
        problem = where is not None and _size_problem(label, where)
        if problem:
            raise RequestError(problem)
    if roots is not None:
        for lora in request_loras(req):
            if not inside(Path(lora), roots):
                raise RequestError(outside_message("LoRA file", lora))
    if req.output_dir and roots is not None and not inside(Path(req.output_dir), roots[1:]):
        raise RequestError(f"output_dir {req.output_dir} is outside the folders this backend may write.")
    if req.output_dir:
        problem = output_dir_problem(Path(req.output_dir))
        if problem:
            raise RequestError(problem)


def _size_problem(label: str, path: Path) -> str | None:
    """What an image or clip decodes to, from its header: refused before anything is decoded."""
    from ..job.job_inputs import image_size_problem
    from ..preprocess.clip_reading import clip_size_problem

    if label == "reference clip":
        return clip_size_problem(path)
    if label in ("character image", "face image"):
        return image_size_problem(path, label)
    return None


def clean_uploads(uploads: Path, store: JobStore, keep_s: float = UPLOAD_KEEP_S) -> None:
    """Remove uploads no queued or running job names once they are older than ``keep_s``,
    and partial files of uploads that never finished."""
    needed = " ".join(store.request_ids(("queued", "running")))
    now = time.time()
    for p in uploads.iterdir():
        try:
            age = now - p.stat().st_mtime
            if p.suffix == ".part" and age > 3600:
                p.unlink()
            elif age > keep_s and p.name not in needed:
                p.unlink()
        except OSError:
            continue


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_tokens(path: Path) -> tuple[dict[str, str], set[str]]:
    """``user token [admin]`` per line (# comments): the tokens and the admins' names. The file
    must be readable by its owner only, and each token one user's."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise SystemExit(f"cannot read the tokens file {path}: {exc.strerror or exc}") from None
    if sys.platform != "win32" and mode & 0o077:
        # Anyone who can read it can act as every user in it.
        raise SystemExit(
            f"the tokens file {path} is readable by other users (mode {mode & 0o777:o}): run chmod 600 on it"
        )
    tokens: dict[str, str] = {}
    admins: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) not in (2, 3) or len(parts[1]) < 16 or parts[2:] not in ([], ["admin"]):
            raise SystemExit(
                f"{path}:{n}: expected 'user token' or 'user token admin' with a token of 16 characters or more"
            )
        user, token = parts[0], parts[1]
        if token in tokens:
            raise SystemExit(
                f"{path}:{n}: {user} has the same token as {tokens[token]}: give each user a token of their own"
            )
        tokens[token] = user
        if parts[2:]:
            admins.add(user)
    if not tokens:
        raise SystemExit(f"{path} holds no tokens")
    return tokens, admins


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the current user only, replacing ``path`` atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if sys.platform == "win32":
        _windows_owner_only(tmp)
    os.replace(tmp, path)


def _windows_owner_only(path: Path) -> None:
    # The mode bits mean little on Windows: drop inherited access and grant the owner alone.
    import subprocess

    user = os.environ.get("USERNAME", "")
    if user:
        subprocess.run(
            ["icacls", str(path), "/inheritance:r", "/grant:r", f"{user}:F"],
            capture_output=True,
            check=False,
        )


def tls_problem(certfile: Path | None, keyfile: Path | None) -> str | None:
    """What is wrong with a certificate and key pair, in one line naming the file; None if fine."""
    import ssl

    if certfile is None:
        return "--ssl-keyfile needs --ssl-certfile (the certificate it belongs to)" if keyfile else None
    for what, f in (("certificate", certfile), ("key", keyfile)):
        if f is not None and not Path(f).is_file():
            return f"the TLS {what} file {f} was not found"
    try:
        ssl.create_default_context(cafile=str(certfile))
    except (ssl.SSLError, OSError, ValueError) as exc:
        return (
            f"the TLS certificate {certfile} is not a PEM certificate ({getattr(exc, 'reason', None) or exc})"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        if "KEY_VALUES_MISMATCH" in str(reason):
            return f"the TLS key {keyfile or certfile} does not belong to the certificate {certfile}"
        if keyfile is None:
            return f"the TLS certificate {certfile} holds no private key: give it with --ssl-keyfile"
        return f"the TLS key {keyfile} is not a PEM private key without a passphrase ({reason})"
    return None


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
    tokens_file: Path | None = None,
    allowed_hosts: list[str] | None = None,
    allowed_roots: list[Path] | None = None,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    upload_quota_gb: float | None = None,
    ray_address: str | None = None,
    ray_resource: str = "GPU",
    ray_gpus_per_job: float = 1,
) -> None:
    import secrets

    import uvicorn

    from .folder_lock import FolderInUse, FolderLock

    # Before the port is bound and the ready file written: a client must never be sent to an
    # https URL of a backend about to die on its certificate.
    problem = tls_problem(ssl_certfile, ssl_keyfile)
    if problem:
        print(problem, file=sys.stderr, flush=True)
        raise SystemExit(2)
    token = token or os.environ.get("WAN_ANIMATE_TOKEN") or secrets.token_urlsafe(32)
    tokens, admins = read_tokens(tokens_file) if tokens_file else ({token: "default"}, {"default"})
    lock = FolderLock(Path(data_dir))
    try:
        lock.acquire()
    except FolderInUse as exc:
        print(exc, file=sys.stderr, flush=True)
        raise SystemExit(FOLDER_IN_USE_EXIT) from None
    names = set(allowed_hosts or ())
    if _is_loopback(host):
        names |= set(LOOPBACK_NAMES)
    elif host not in ("0.0.0.0", "::"):
        names.add(host)
    if host in ("0.0.0.0", "::") and not allowed_hosts:
        names = set()  # listening everywhere: the studio names its hosts with --allowed-host
    access = Access(
        tokens=tokens,
        admins=admins,
        allowed_hosts=names,
        # Off this machine a client's paths mean nothing to it, and must not reach the backend's
        # own files: inputs come as uploads or from the studio's roots, results go to those roots.
        confine_to=None
        if _is_loopback(host) and not allowed_roots
        else [Path(r).resolve() for r in allowed_roots or ()],
        upload_quota=int(upload_quota_gb * (1 << 30)) if upload_quota_gb else DEFAULT_UPLOAD_QUOTA,
    )
    cluster = None
    if ray_address:
        from .cluster import ClusterUnavailable, cluster_factory

        try:
            cluster = cluster_factory(
                ray_address, data_dir, model_dir, ray_resource, ray_gpus_per_job, device
            )
        except ClusterUnavailable as exc:
            print(exc, file=sys.stderr, flush=True)
            lock.release()
            raise SystemExit(2) from None
    try:
        app = create_app(access, data_dir, model_dir, device, leader=leader, cluster=cluster)
    except (StoreDamaged, StoreUnavailable) as exc:
        print(exc, file=sys.stderr, flush=True)
        lock.release()
        raise SystemExit(2) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP given explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it a poll on a kept-alive connection waits ~40 ms on Nagle's algorithm.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    if sys.platform != "win32":
        # On Windows SO_REUSEADDR lets a second process take a port in use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listen before announcing the port: clients may connect before uvicorn's loop runs.
    sock.listen(128)
    actual_port = sock.getsockname()[1]
    lock.describe(actual_port)
    tls = ssl_certfile is not None
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
    server = uvicorn.Server(config)

    def watch_shutdown() -> None:
        app.state.shutdown.wait()
        server.should_exit = True

    threading.Thread(target=watch_shutdown, daemon=True).start()
    if parent_pid:
        from .parent_watch import watch_parent

        watch_parent(parent_pid, app.state.shutdown.set)
    app.state.worker.start()
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if tls else 'http'}://{shown}:{actual_port}"
    info = {"host": host, "port": actual_port, "pid": os.getpid(), "url": url}
    if ready_file:
        # Written atomically after the socket is bound (the add-on polls for it), and private:
        # it holds the token.
        write_private(Path(ready_file), json.dumps({**info, "token": token}))
    print(f"Wan-Animate backend listening on {info['url']} (pid {info['pid']})", flush=True)
    if not os.environ.get("WAN_ANIMATE_TOKEN") and not ready_file and not tokens_file:
        print(f"token: {token}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.worker.stop()
        if leader is not None:
            leader.stop()
        lock.release()
        sys.stdout.flush()
