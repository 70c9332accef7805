"""One Generate press, off Blender's main thread: start the backend if needed,
submit, follow progress, bring the frames home. The UI reads ``state``; nothing
here touches bpy, so it runs the same on a thread (UI) or inline (headless)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...backend.protocol import INTERRUPTED_STAGE, CheckReply, JobRequest, JobStatus
from .backend_process import LocalBackend
from .client import BackendClient, BackendError, BackendUnreachable

# How long a backend may not answer before the job is called lost: a remote machine that
# restarts, or a network that drops for a moment, comes back well within it.
LOST_AFTER_S = 60.0


@dataclass
class SessionState:
    stage: str = "starting backend"
    message: str = "Starting the backend"
    progress: float = 0.0
    eta_s: float | None = None
    job_id: str | None = None
    finished: bool = False
    ok: bool = False
    cancelled: bool = False
    error: str | None = None
    result_dir: Path | None = None
    frame_count: int = 0
    log: list[str] = field(default_factory=list)
    # The clip check's report (warnings, the followed box, the annotated frame as base64 PNG),
    # once it is back; ``asking``: the session waits for answer() before it submits.
    check: CheckReply | None = None
    asking: bool = False

    @property
    def check_warnings(self) -> list[str]:
        """What the clip check found to know (none before it is back, or without one)."""
        return list(self.check.warnings) if self.check is not None else []


class JobSession:
    def __init__(
        self,
        request: JobRequest,
        character: Path,
        clip: Path | None,
        local: LocalBackend | None = None,
        remote: BackendClient | None = None,
        download_to: Path | None = None,
        poll_s: float = 0.25,
        lost_after_s: float = LOST_AFTER_S,
        ask_on_warnings: bool = False,
    ) -> None:
        """``ask_on_warnings``: after the clip check, a report with warnings waits for answer()
        (Continue or Cancel, asked by the UI); otherwise the report is kept and the job goes on."""
        self.request = request
        self.character = Path(character)
        self.clip = Path(clip) if clip is not None else None  # None: motion from saved pose points
        self.local, self.remote = local, remote
        self.download_to = download_to
        self.poll_s = poll_s
        self.lost_after_s = lost_after_s
        self.state = SessionState()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.ask_on_warnings = ask_on_warnings
        self._answered = threading.Event()
        self._go_on = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="wan-animate-job", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()
        self.answer(False)

    def answer(self, go_on: bool) -> None:
        """The artist's answer to the clip check's warnings: Continue (True) or Cancel."""
        self._go_on = go_on
        self._answered.set()

    def _set(self, **kw) -> None:
        for k, v in kw.items():
            setattr(self.state, k, v)

    def run(self) -> SessionState:
        try:
            self._run()
        except BackendError as exc:
            self._set(error=str(exc), message=str(exc), ok=False)
        except Exception as exc:  # noqa: BLE001 - the artist sees every failure as a message
            self._set(error=f"{type(exc).__name__}: {exc}", message=f"Unexpected error: {exc}", ok=False)
        finally:
            self.state.finished = True
        return self.state

    def _client(self) -> BackendClient:
        if self.remote is not None:
            return self.remote
        assert self.local is not None
        self._set(stage="starting backend", message="Starting the backend", progress=0.0)
        return self.local.start()

    def _run(self) -> None:
        for label, p in (("character image", self.character), ("reference clip", self.clip)):
            if p is not None and not (p.is_file() or (label == "reference clip" and p.is_dir())):
                raise BackendError(f"The {label} was not found: {p}. Pick an existing file.")
        if self.remote is not None and self.clip is not None and self.clip.is_dir():
            raise BackendError(
                "A folder of frames can only be read by a backend on this computer. Render the strip "
                "to a movie file for the remote backend."
            )
        client = self._client()
        if self._cancel.is_set():
            self._set(cancelled=True, message="Cancelled")
            return
        req = self.request
        if self.remote is not None:
            self._set(stage="uploading", message="Uploading inputs")
            sent: dict[Path, str] = {}

            def upload(path: Path) -> str:
                # A file named twice (a cast row's character is often the job's) travels once.
                key = Path(path).resolve()
                if key not in sent:
                    # Sent under the name the artist gave: its suffix says what kind of file it is.
                    sent[key] = client.upload(Path(path))
                return sent[key]

            req.character_upload = upload(self.character)
            if self.clip is not None:
                req.clip_upload = upload(self.clip)
            if req.keypoints_path:
                req.keypoints_upload = upload(Path(req.keypoints_path))
            if req.face_path:
                req.face_upload = upload(Path(req.face_path))
            # A cast's characters, one per row, travel as uploads too.
            req.settings.cast = [
                {k: v for k, v in row.items() if k != "character_path"}
                | {"character_upload": upload(Path(row["character_path"]))}
                if row.get("character_path")
                else row
                for row in req.settings.cast
            ]
            req.character_path = req.clip_path = req.keypoints_path = req.face_path = None
            req.output_dir = None
        else:
            req.character_path = str(self.character)
            req.clip_path = str(self.clip) if self.clip is not None else None
        # Saved keypoints (a regenerate) need no look at the clip.
        fresh = not (req.keypoints_path or req.keypoints_upload)
        if self.clip is not None and fresh and not self._checked(client, req):
            return
        st = client.submit(req)
        self._set(job_id=st.id)
        cancel_sent = False
        resumed = False
        while True:
            if self._cancel.is_set() and not cancel_sent:
                self._ask(lambda st=st: client.cancel(st.id))
                cancel_sent = True
            st = self._ask(lambda st=st: client.status(st.id))
            if st.stage == INTERRUPTED_STAGE and not resumed and not self._cancel.is_set():
                # The backend restarted under the job: submitted again, it resumes after the
                # windows it had finished (once; a job that keeps killing its backend is reported).
                resumed = True
                st = client.submit(req)
                self._set(job_id=st.id, message="The backend restarted; resuming the job")
                continue
            self._apply(st)
            if st.finished:
                break
            if self.local is not None and not self.local.running:
                raise BackendError(self._crash_message(None))
            time.sleep(self.poll_s)
        if st.state == "cancelled":
            self._set(cancelled=True, message="Cancelled; nothing was imported")
            return
        if st.state == "failed":
            raise BackendError(st.error or st.message)
        result = Path(st.result_dir or "")
        if self.remote is not None:
            result = self._download(client, st)
        self._set(
            result_dir=result,
            frame_count=st.frame_count,
            ok=True,
            progress=1.0,
            stage="importing",
            message=f"Importing {st.frame_count} frames",
        )

    def _checked(self, client: BackendClient, req: JobRequest) -> bool:
        """The clip check before the long wait: a clip a job would fail on fails here in
        seconds; warnings are reported, and asked about when the UI wants to. False: cancelled."""
        self._set(stage="checking the clip", message="Checking the clip: looking for the performer")
        report = client.check(req)
        if report is not None:  # None: a backend without the check; the job finds out itself
            report_text = [f"Clip check: {w}" for w in report.warnings]
            self._set(check=report, log=[*self.state.log, *report_text])
            if not report.ok:
                raise BackendError(str(report.error))
            if report.warnings and self.ask_on_warnings:
                self._set(asking=True, stage="clip check", message="; ".join(report.warnings))
                self._answered.wait()
                self._set(asking=False)
                if not self._go_on:
                    self._cancel.set()
        if self._cancel.is_set():
            self._set(cancelled=True, message="Cancelled after the clip check")
            return False
        return True

    def _ask(self, call):
        """``call()``, asked again while the backend does not answer, up to ``lost_after_s``."""
        deadline = time.monotonic() + self.lost_after_s
        wait = self.poll_s
        while True:
            try:
                return call()
            except BackendUnreachable as exc:
                if self.local is not None and not self.local.running:
                    raise BackendError(self._crash_message(exc)) from exc
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"{exc} It has not answered for {self.lost_after_s:.0f} s, so the job was given up "
                        "here; if the backend comes back, its job resumes when you press Generate again."
                    ) from exc
                self._set(message=f"The backend is not answering; asking again ({exc})")
                time.sleep(wait)
                wait = min(wait * 2, 5.0)

    def _apply(self, st: JobStatus) -> None:
        stage = st.stage
        if st.stage in ("denoising", "decoding") and st.windows:
            stage = f"window {st.window} of {st.windows}, step {st.step} of {st.steps}"
            if st.stage == "decoding":
                stage = f"decoding window {st.window} of {st.windows}"
        self._set(stage=stage, message=st.message, progress=st.progress, eta_s=st.eta_s)

    def _crash_message(self, exc: BackendError | None) -> str:
        if self.local is not None and not self.local.running:
            code = self.local.exit_code()
            return (
                f"The backend stopped unexpectedly (exit code {code}) during '{self.state.stage}'. "
                f"Nothing was imported. Press Generate to start it again; its log is {self.local.log_path}:\n"
                f"{self.local.log_tail(8)}"
            )
        return str(exc)

    def _download(self, client: BackendClient, st: JobStatus) -> Path:
        assert self.download_to is not None and st.result_dir is not None
        dest = self.download_to / Path(st.result_dir.replace("\\", "/")).name
        dest.mkdir(parents=True, exist_ok=False)
        files = client.files(st.id)
        for i, rel in enumerate(files):
            if self._cancel.is_set():
                raise BackendError("Cancelled while downloading; the partial folder was left at " + str(dest))
            client.download(st.id, rel, dest / rel)
            self._set(stage="downloading", message=f"Downloading {i + 1}/{len(files)}")
        return dest
