"""Uploads (the files a remote client sends before naming them in a job) and a finished job's
result files."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ..protocol import API_PREFIX, UPLOAD_ID
from .job_store import JobStore
from .routes_common import ERRORS, JOB_ERRORS, Service, error_reply, visible_job

MAX_UPLOAD_BYTES = 4 << 30
# Uploads kept for jobs that may still need them; older ones nobody queued go.
UPLOAD_KEEP_S = 24 * 3600
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    "parameters": [{"name": "X-Filename", "in": "header", "required": False, "schema": {"type": "string"}}],
}
NO_RESULTS = {**JOB_ERRORS, 409: error_reply("the job has no results yet")}


def add_file_routes(app: FastAPI, service: Service) -> None:
    space = UploadSpace(service.uploads, service.access.upload_quota)

    @app.post(
        f"{API_PREFIX}/uploads",
        responses={
            **ERRORS,
            400: error_reply("an empty upload"),
            413: error_reply("larger than 4 GiB, or the upload quota is full"),
        },
        openapi_extra=UPLOAD_BODY,
    )
    async def upload(request: Request) -> dict:
        return await receive_upload(request, service.uploads, space)

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}/files", responses=NO_RESULTS)
    def list_files(request: Request, job_id: str) -> dict:
        return {"files": result_files(_result_root(service, request, job_id))}

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}/files/{{rel:path}}", responses=NO_RESULTS)
    def fetch_file(request: Request, job_id: str, rel: str) -> FileResponse:
        target = _result_file(_result_root(service, request, job_id), rel)
        if target is None:
            raise HTTPException(404, f"no file {rel[:200]}")
        return FileResponse(target)


async def receive_upload(request: Request, uploads: Path, space: UploadSpace) -> dict:
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


def _result_root(service: Service, request: Request, job_id: str) -> Path:
    st = visible_job(service, request, job_id)
    if st.state != "done" or not st.result_dir:
        raise HTTPException(409, f"job {job_id} has no results (state {st.state})")
    return Path(st.result_dir).resolve()


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


def _own_parts(root: Path) -> set[Path]:
    """Sub-folders of ``root`` that hold a job.json and are still this job's: a cast's passes
    (``cast_<k>/``), named in the root's own job.json."""
    try:
        job = json.loads((root / "job.json").read_text(encoding="utf-8"))
        names = [p["folder"] for p in job.get("cast") or [] if isinstance(p, dict) and "folder" in p]
    except (OSError, ValueError, TypeError, AttributeError):
        return set()
    return {
        root / n
        for n in names
        if isinstance(n, str) and "/" not in n and "\\" not in n and n not in ("", ".", "..")
    }


def _nested_result(d: Path, own: set[Path]) -> bool:
    return d not in own and (d / "job.json").exists()


def result_files(root: Path) -> list[str]:
    """The files a job wrote: a folder holding its own job.json is another job's result, unless
    the job names it as one of its own parts (a cast's passes)."""
    out: list[str] = []
    own = _own_parts(root)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not _nested_result(here / d, own))
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
    own = _own_parts(root)
    if any(_nested_result(d, own) for d in target.parents if root in d.parents):
        return None
    return target


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
