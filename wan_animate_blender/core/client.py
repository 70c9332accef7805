"""HTTP client for the backend API. Runs on worker threads, never on Blender's UI
thread. Uses requests, which Blender bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from ...backend.protocol import API_PREFIX, CheckReply, HealthReply, JobRequest, JobStatus

# A check takes seconds, but a batch's checks queue behind each other on the backend.
CHECK_TIMEOUT_S = 600.0


class BackendError(RuntimeError):
    """A failure the artist can act on; the message says what to do."""


class BackendUnreachable(BackendError):
    """No answer (connection refused or reset, a time-out, a busy 503): worth asking again."""


class BackendClient:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            resp = self._session.request(method, f"{self.url}{API_PREFIX}{path}", timeout=self.timeout, **kw)
        except requests.ConnectionError as exc:
            raise BackendUnreachable(
                f"Cannot reach the backend at {self.url}: it is not running or not reachable."
            ) from exc
        except requests.Timeout as exc:
            raise BackendUnreachable(
                f"The backend at {self.url} did not answer in {self.timeout:.0f} s."
            ) from exc
        if resp.status_code == 401:
            raise BackendError("The backend refused the token. Check the token in the add-on preferences.")
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except (ValueError, AttributeError):
                detail = resp.text
            if resp.status_code in (502, 503, 504):
                raise BackendUnreachable(str(detail))
            raise BackendError(str(detail))
        return resp

    def health(self) -> HealthReply:
        return HealthReply.from_json(self._call("GET", "/health").json())

    def upload(self, path: Path) -> str:
        with open(path, "rb") as f:
            resp = self._call("POST", "/uploads", data=f, headers={"X-Filename": Path(path).name})
        return resp.json()["upload_id"]

    def submit(self, req: JobRequest) -> JobStatus:
        return JobStatus.from_json(self._call("POST", "/jobs", json=req.to_json()).json())

    def check(self, req: JobRequest) -> CheckReply | None:
        """The clip check (seconds, more while other checks queue): whom a job would follow, and
        what to know first. None from a backend too old to have one."""
        try:
            resp = self._session.post(
                f"{self.url}{API_PREFIX}/check",
                json=req.to_json(),
                timeout=max(self.timeout, CHECK_TIMEOUT_S),
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise BackendUnreachable(
                f"The backend at {self.url} did not answer the clip check: {exc}"
            ) from exc
        if resp.status_code in (404, 405):
            return None
        if resp.status_code >= 400:
            # The same error, worded.
            return CheckReply.from_json(self._call("POST", "/check", json=req.to_json()).json())
        return CheckReply.from_json(resp.json())

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.from_json(self._call("GET", f"/jobs/{job_id}").json())

    def jobs(self) -> list[JobStatus]:
        return [JobStatus.from_json(j) for j in self._call("GET", "/jobs").json()]

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus.from_json(self._call("POST", f"/jobs/{job_id}/cancel").json())

    def files(self, job_id: str) -> list[str]:
        return self._call("GET", f"/jobs/{job_id}/files").json()["files"]

    def download(self, job_id: str, rel: str, dest: Path) -> None:
        resp = self._call("GET", f"/jobs/{job_id}/files/{rel}", stream=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as f:
            for chunk in resp.iter_content(1 << 20):
                f.write(chunk)

    def shutdown(self) -> None:
        self._call("POST", "/shutdown")
