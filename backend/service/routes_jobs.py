"""Jobs: submit (the request checked with the files it names), list, status and cancel; and the
request body as both submit and the clip check read it."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from ..protocol import (
    API_PREFIX,
    MAX_JSON_DEPTH,
    MAX_REQUEST_BYTES,
    JobRequest,
    RequestError,
    job_request_schema,
    json_depth_problem,
)
from .routes_common import ERRORS, JOB_ERRORS, Service, error_reply, sees, visible_job

MAX_JOB_PAGE = 1000


def job_body() -> dict:
    """The job request's body, as POST /jobs and POST /check both take it (declared once for
    /openapi.json)."""
    return {
        "responses": {
            **ERRORS,
            400: error_reply("the request names the field to change"),
            413: error_reply("a body over 1 MiB"),
            503: error_reply("the job database is locked or damaged, or (check) other checks fill the queue"),
        },
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": job_request_schema()}},
            }
        },
    }


def add_job_routes(app: FastAPI, service: Service) -> None:
    @app.post(f"{API_PREFIX}/jobs", status_code=201, **job_body())
    async def submit(request: Request) -> dict:
        body = await read_body(request)
        # The checks read files and the store may wait out another program's lock: off the loop,
        # so polls and health answer meanwhile.
        user = request.state.user
        return await run_in_threadpool(
            lambda: service.worker.submit(parse_request(service, body), user).to_json()
        )

    @app.get(
        f"{API_PREFIX}/jobs", responses={**ERRORS, 400: error_reply("after names no job the caller may see")}
    )
    def list_jobs(
        request: Request,
        limit: int = Query(100, ge=1, le=MAX_JOB_PAGE),  # noqa: B008 - FastAPI's idiom
        after: str | None = Query(None, max_length=64),  # noqa: B008
    ) -> list[dict]:
        """The caller's jobs (an admin's: everyone's) in submission order, ``limit`` at a time;
        pass the last id as ``after`` for the next page."""
        seen = service.store.get(after) if after else None
        if after and (seen is None or not sees(request, seen)):
            # An empty page would read as "no more jobs".
            raise RequestError(
                f"after={after!r:.80} is no job's id: pass the id of the last job of the previous page"
            )
        owner = None if request.state.admin else request.state.user
        return [j.to_json() for j in service.store.list(limit=limit, after=after, owner=owner)]

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}", responses=JOB_ERRORS)
    def job_status(request: Request, job_id: str) -> dict:
        return visible_job(service, request, job_id).to_json()

    @app.post(f"{API_PREFIX}/jobs/{{job_id}}/cancel", responses=JOB_ERRORS)
    def cancel(request: Request, job_id: str) -> dict:
        visible_job(service, request, job_id)
        return service.worker.cancel(job_id).to_json()


async def read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise HTTPException(413, f"a job request is at most {MAX_REQUEST_BYTES >> 10} KiB of JSON")
    return bytes(body)


def parse_request(service: Service, body: bytes) -> JobRequest:
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
        check_inputs(req, service.uploads, service.access.confine_to)
    except OSError as exc:  # a name too long for the file system, a path through a file...
        raise RequestError(f"a path in the request cannot be used: {exc.strerror or exc}") from None
    return req


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
    named = [(label, getattr(req, pf), getattr(req, uf)) for label, pf, uf in INPUTS]
    # A cast row's character is an input like the job's own, named by its row when refused.
    named += [
        (f"character image of cast row {n}", m.get("character_path"), m.get("character_upload"))
        for n, m in enumerate(req.settings.cast, 1)
    ]
    for label, p, up in named:
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
