"""Starting and stopping the local backend process (bpy-free, portable: argument
lists, pathlib, no shell)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ...backend.protocol import FOLDER_IN_USE_EXIT, TOKEN_ENV
from .client import BackendClient, BackendError

EXTENSION_ROOT = Path(__file__).resolve().parents[2]


class _FolderInUse(BackendError):
    pass


@dataclass
class BackendConfig:
    python: Path
    model_dir: Path
    data_dir: Path
    device: str = "auto"
    threads: int = 0
    start_timeout_s: float = 180.0


class LocalBackend:
    def __init__(self, cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.proc: subprocess.Popen | None = None
        self.client: BackendClient | None = None
        self.log_path = Path(cfg.data_dir) / "logs" / "backend.log"
        self._start_lock = threading.Lock()  # several job threads may ask at once (batches)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def start(self) -> BackendClient:
        with self._start_lock:
            return self._start()

    def _start(self) -> BackendClient:
        if self.running and self.client is not None:
            return self.client
        # A backend this Blender started before (and was told to stop, or whose Blender
        # crashed) may still be leaving the data folder: give it a moment before giving up.
        deadline = time.monotonic() + 20.0
        while True:
            try:
                return self._launch()
            except _FolderInUse as exc:
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"{exc} Another Blender's backend is using it: press Stop Backend in that Blender "
                        "(or close it), then Generate here again."
                    ) from None
                time.sleep(1.0)

    def _launch(self) -> BackendClient:
        python = Path(self.cfg.python)
        if not python.is_file():
            raise BackendError(
                f"The backend is not installed: no Python at {python}. Open Edit > Preferences > Add-ons > "
                "Wan Animate and press 'Set up backend', or set 'Backend Python' to an environment made with "
                "`python -m backend setup --venv DIR`."
            )
        data_dir = Path(self.cfg.data_dir)
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        ready = data_dir / f"ready-{os.getpid()}-{secrets.token_hex(4)}.json"
        token = secrets.token_urlsafe(32)
        env = dict(os.environ)
        # The backend package ships inside the extension; its environment knows nothing of Blender's.
        env["PYTHONPATH"] = str(EXTENSION_ROOT)
        env[TOKEN_ENV] = token
        env.pop("PYTHONHOME", None)
        args = [
            str(python),
            "-m",
            "backend",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--model-dir",
            str(self.cfg.model_dir),
            "--device",
            self.cfg.device,
            "--ready-file",
            str(ready),
            "--parent-pid",
            str(os.getpid()),
        ]
        if self.cfg.threads:
            args += ["--threads", str(self.cfg.threads)]
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(data_dir),
                creationflags=flags,
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.cfg.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() == FOLDER_IN_USE_EXIT:
                raise _FolderInUse(self.log_tail(1))
            if self.proc.poll() is not None:
                raise BackendError(
                    f"The backend exited while starting (code {self.proc.returncode}). "
                    f"Its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            if ready.is_file():
                info = json.loads(ready.read_text())
                ready.unlink(missing_ok=True)
                self.client = BackendClient(info["url"], info["token"])
                return self.client
            time.sleep(0.1)
        self.stop()
        raise BackendError(
            f"The backend did not start within {self.cfg.start_timeout_s:.0f} s; see {self.log_path}."
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                if self.client is not None:
                    self.client.shutdown()
                self.proc.wait(timeout=timeout)
            except (BackendError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.proc, self.client = None, None
