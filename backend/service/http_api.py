"""The HTTP/JSON API (OpenAPI at /openapi.json). Every request must carry a token,
``Authorization: Bearer <token>``, and name the address the backend listens on in
its Host header (so a web page that rebinds a DNS name to this machine gets nowhere).

The routes live in groups, each adding itself to the app: jobs (routes_jobs), uploads and result
files (routes_files), the clip check (routes_check), health and shutdown (routes_health)."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .. import __version__
from ..engines import Engines
from ..job.run_job import JobRunner
from ..model.model_store import ModelStore
from ..protocol import FOLDER_IN_USE_EXIT, RequestError
from .job_store import JobStore, StoreDamaged, StoreUnavailable
from .routes_check import add_check_route
from .routes_common import DEFAULT_UPLOAD_QUOTA, Access, Service
from .routes_files import add_file_routes, clean_uploads
from .routes_health import add_health_routes
from .routes_jobs import add_job_routes
from .worker import JobWorker

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def create_app(
    token: str | Access,
    data_dir: Path,
    model_dir: Path,
    device: str = "auto",
    estimator_factory: Any = None,
    leader: Any = None,
    cluster: Any = None,
) -> FastAPI:
    """``cluster``: a factory ``(store, uploads, after_job) -> worker`` that runs jobs on a Ray
    cluster (service/cluster.py) instead of this machine's worker."""
    service = _make_service(token, data_dir, model_dir, device, estimator_factory, leader, cluster)
    app = FastAPI(
        title="Wan-Animate backend",
        version=__version__,
        description="Local backend for the Wan Animate Blender extension.",
    )
    app.state.worker = service.worker
    app.state.shutdown = threading.Event()
    app.add_middleware(CheckHostAndToken, access=service.access, outer=app)
    _add_error_replies(app)
    add_health_routes(app, service)
    add_file_routes(app, service)
    add_job_routes(app, service)
    add_check_route(app, service)
    return app


def _make_service(
    token: str | Access,
    data_dir: Path,
    model_dir: Path,
    device: str,
    estimator_factory: Any,
    leader: Any,
    cluster: Any,
) -> Service:
    access = token if isinstance(token, Access) else Access(tokens={token: "default"})
    data_dir = Path(data_dir).resolve()
    uploads = data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    models = ModelStore(device, leader)
    store = JobStore(data_dir / "jobs.sqlite3")
    engines = Engines(models, Path(model_dir))
    roots = None if access.confine_to is None else [uploads, *access.confine_to]
    runner = JobRunner(engines, Path(model_dir), data_dir / "results", estimator_factory, roots=roots)
    worker = (cluster or _local_worker(runner))(store, uploads, lambda: clean_uploads(uploads, store))
    if cluster:
        worker.roots = roots  # the head reads the files it ships to the nodes
    clean_uploads(uploads, store)
    return Service(
        access=access,
        data_dir=data_dir,
        model_dir=Path(model_dir),
        uploads=uploads,
        models=models,
        store=store,
        engines=engines,
        runner=runner,
        worker=worker,
        roots=roots,
        estimator_factory=estimator_factory,
        clustered=bool(cluster),
    )


class CheckHostAndToken:
    """Host and token checks as plain ASGI: a poll pays no per-request task or body copying
    (Starlette's decorator middleware costs a few milliseconds a request)."""

    def __init__(self, inner: Any, access: Access, outer: FastAPI) -> None:
        self.inner, self.access, self.outer = inner, access, outer
        self.expected = [(f"Bearer {t}".encode(), user) for t, user in access.tokens.items()]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        headers = dict(scope["headers"])
        if self.access.allowed_hosts:
            host = _host_name(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.access.allowed_hosts:
                detail = f"this backend does not answer to the name {host!r}"
                return await JSONResponse({"detail": detail}, status_code=421)(scope, receive, send)
        got = headers.get(b"authorization", b"")
        # Every token is compared, so the time taken does not tell which one nearly matched.
        matches = [user for tok, user in self.expected if hmac.compare_digest(got, tok)]
        if not matches:
            return await JSONResponse({"detail": "missing or wrong token"}, status_code=401)(
                scope, receive, send
            )
        scope.setdefault("state", {}).update(user=matches[0], admin=matches[0] in self.access.admins)

        async def send_with_allow(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                # Starlette names only the first route that matched the path; list every method.
                routes = self.outer.routes
                methods = sorted({m for r in routes if _matches_path(r, scope) for m in r.methods or ()})
                kept = [(k, v) for k, v in message["headers"] if k.lower() != b"allow"]
                message = {**message, "headers": [*kept, (b"allow", ", ".join(methods).encode())]}
            await send(message)

        await self.inner(scope, receive, send_with_allow)


def _add_error_replies(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def bad_request(_request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StoreUnavailable)
    async def store_busy(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(StoreDamaged)
    async def store_damaged(_request: Request, exc: StoreDamaged) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)


def _local_worker(runner: JobRunner) -> Any:
    return lambda store, uploads, after_job: JobWorker(store, runner, uploads, after_job=after_job)


def _matches_path(route: Any, scope: dict) -> bool:
    from starlette.routing import Match

    return getattr(route, "methods", None) is not None and route.matches(scope)[0] != Match.NONE


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


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
    leader: Any = None,
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
        _stop(problem)
    token = token or os.environ.get("WAN_ANIMATE_TOKEN") or secrets.token_urlsafe(32)
    tokens, admins = read_tokens(tokens_file) if tokens_file else ({token: "default"}, {"default"})
    lock = FolderLock(Path(data_dir))
    try:
        lock.acquire()
    except FolderInUse as exc:
        _stop(str(exc), FOLDER_IN_USE_EXIT)
    access = _access_for(host, tokens, admins, allowed_hosts, allowed_roots, upload_quota_gb)
    cluster = None
    if ray_address:
        from .cluster import ClusterUnavailable, cluster_factory

        try:
            cluster = cluster_factory(
                ray_address, data_dir, model_dir, ray_resource, ray_gpus_per_job, device
            )
        except ClusterUnavailable as exc:
            lock.release()
            _stop(str(exc))
    try:
        app = create_app(access, data_dir, model_dir, device, leader=leader, cluster=cluster)
    except (StoreDamaged, StoreUnavailable) as exc:
        lock.release()
        _stop(str(exc))
    sock = _listening_socket(host, port)
    actual_port = sock.getsockname()[1]
    lock.describe(actual_port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
    server = uvicorn.Server(config)
    _stop_on_shutdown(app, server, parent_pid)
    app.state.worker.start()
    _announce(host, actual_port, ssl_certfile is not None, token, ready_file, tokens_file)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.worker.stop()
        if leader is not None:
            leader.stop()
        lock.release()
        sys.stdout.flush()


def _stop(message: str, code: int = 2) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(code) from None


def _access_for(
    host: str,
    tokens: dict[str, str],
    admins: set[str],
    allowed_hosts: list[str] | None,
    allowed_roots: list[Path] | None,
    upload_quota_gb: float | None,
) -> Access:
    names = set(allowed_hosts or ())
    if _is_loopback(host):
        names |= set(LOOPBACK_NAMES)
    elif host not in ("0.0.0.0", "::"):
        names.add(host)
    if host in ("0.0.0.0", "::") and not allowed_hosts:
        names = set()  # listening everywhere: the studio names its hosts with --allowed-host
    return Access(
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


def _listening_socket(host: str, port: int) -> socket.socket:
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
    return sock


def _stop_on_shutdown(app: FastAPI, server: Any, parent_pid: int | None) -> None:
    def watch_shutdown() -> None:
        app.state.shutdown.wait()
        server.should_exit = True

    threading.Thread(target=watch_shutdown, daemon=True).start()
    if parent_pid:
        from .parent_watch import watch_parent

        watch_parent(parent_pid, app.state.shutdown.set)


def _announce(
    host: str, port: int, tls: bool, token: str, ready_file: Path | None, tokens_file: Path | None
) -> None:
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if tls else 'http'}://{shown}:{port}"
    info = {"host": host, "port": port, "pid": os.getpid(), "url": url}
    if ready_file:
        # Written atomically after the socket is bound (the add-on polls for it), and private:
        # it holds the token.
        write_private(Path(ready_file), json.dumps({**info, "token": token}))
    print(f"Wan-Animate backend listening on {info['url']} (pid {info['pid']})", flush=True)
    if not os.environ.get("WAN_ANIMATE_TOKEN") and not ready_file and not tokens_file:
        print(f"token: {token}", flush=True)
