"""What runs on a worker node of a Ray cluster: one actor per GPU, keeping its model warm
between jobs.

The actor runs the ordinary JobRunner on inputs the head sent through Ray's object store,
and streams back everything the head must keep: progress, each finished window as it
completes (so a job whose node dies resumes elsewhere from the head's copy), and the result
files. Nothing here listens on a port; the head calls the actor through Ray.
Ray itself is imported only by the head (``cluster.py``); this module stays importable
without it."""

from __future__ import annotations

import json
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Progress is coalesced to this rate: a denoising step reports several fields at once and the
# head needs only the latest.
PROGRESS_EVERY_S = 0.2
# How long a job waits for the head's saved windows before starting from the first window.
RESTORE_WAIT_S = 120.0

Event = tuple[Any, ...]
# Inputs as shipped by the head: role -> (file to open, [(file name, bytes), ...]).
Shipped = dict[str, tuple[str, list[tuple[str, bytes]]]]


class NodeRunner:
    """The body of a cluster actor (made a Ray actor by the head, with max_concurrency=2 so
    ``cancel`` and ``restore`` reach it while ``run`` streams)."""

    def __init__(self, model_dir: str, device: str = "auto") -> None:
        from ..engines import Engines
        from ..model.model_store import ModelStore

        self.model_dir = Path(model_dir)
        # Each actor its own scratch folder: several actors may share one machine's disk.
        self.work = Path(tempfile.mkdtemp(prefix="wan-animate-node-"))
        self.models = ModelStore(device)
        # Kept for the actor's life: the model stays warm between jobs.
        self.engines = Engines(self.models, self.model_dir)
        self._cancels: dict[str, threading.Event] = {}
        self._restores: dict[str, tuple[threading.Event, list]] = {}

    def where(self) -> dict[str, Any]:
        """Which node and accelerator this actor holds (for health and the failure reasons)."""
        import ray

        ctx = ray.get_runtime_context()
        return {
            "node_id": ctx.get_node_id(),
            "ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "accelerators": {k: [str(i) for i in v] for k, v in ctx.get_accelerator_ids().items() if v},
            "model_loaded": self.models.loaded is not None,
        }

    def cancel(self, job_id: str) -> bool:
        ev = self._cancels.get(job_id)
        if ev is not None:
            ev.set()
        return ev is not None

    def restore(self, job_id: str, key_text: str, windows: list[tuple[Any, Any]]) -> int:
        """The head's saved windows for the job's window key, written where the job reads them."""
        from ..generation.window_store import WindowStore
        from ..job.job_inputs import key_hash

        key = json.loads(key_text)
        store = WindowStore(self.work / "windows" / key_hash(key), key)
        for i, (frames, tail) in enumerate(windows):
            store.save(i, frames, tail)
        ev, _ = self._restores.get(job_id, (None, None))
        if ev is not None:
            ev.set()
        return len(windows)

    def run(self, job_id: str, request: dict[str, Any], shipped: Shipped) -> Iterator[Event]:
        """Run one job; yields ("progress", fields), ("key", window key), ("window", index,
        frames, tail), ("file", relative path, bytes), then ("done", summary) or ("error", exc)."""
        from ..job.run_job import JobRunner
        from ..protocol import JobRequest

        events: queue.Queue[Event] = queue.Queue()
        cancel = self._cancels.setdefault(job_id, threading.Event())
        self._restores[job_id] = (threading.Event(), [])
        job_dir = self.work / "jobs" / job_id
        shutil.rmtree(job_dir, ignore_errors=True)
        try:
            paths = _write_inputs(job_dir / "inputs", shipped)
            req = JobRequest.from_json(request)
            runner = JobRunner(
                _StreamingEngines(self.engines, events.put, lambda: self._await_restore(job_id, cancel)),
                self.model_dir,
                job_dir / "results",
                work_dir=self.work / "windows",
            )

            def work() -> None:
                try:
                    events.put(("result", runner.run(job_id, req, paths, _progress(events.put), cancel)))
                except BaseException as exc:  # noqa: BLE001 - every outcome goes to the head
                    events.put(("error", _portable(exc)))

            threading.Thread(target=work, name=f"job-{job_id[:8]}", daemon=True).start()
            yield from _stream(events)
        finally:
            self._cancels.pop(job_id, None)
            self._restores.pop(job_id, None)
            shutil.rmtree(job_dir, ignore_errors=True)

    def _await_restore(self, job_id: str, cancel: threading.Event) -> None:
        ev, _ = self._restores[job_id]
        waited = 0.0
        while not ev.wait(0.2) and not cancel.is_set() and waited < RESTORE_WAIT_S:
            waited += 0.2


def _stream(events: queue.Queue[Event]) -> Iterator[Event]:
    """The runner's events in order, progress merged; the result's files at the end."""
    pending: dict[str, Any] = {}
    while True:
        try:
            ev = events.get(timeout=PROGRESS_EVERY_S if pending else None)
        except queue.Empty:
            yield ("progress", pending)
            pending = {}
            continue
        if ev[0] == "progress":
            pending.update(ev[1])
            continue
        if pending:
            yield ("progress", pending)
            pending = {}
        if ev[0] == "result":
            result = dict(ev[1])
            root = Path(result.pop("result_dir"))
            for rel in _files(root):
                yield ("file", rel, (root / rel).read_bytes())
            shutil.rmtree(root, ignore_errors=True)
            yield ("done", result)
            return
        yield ev
        if ev[0] == "error":
            return


def _progress(put: Callable[[Event], None]) -> Callable[..., None]:
    def report(**fields: Any) -> None:
        put(("progress", fields))

    return report


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when Ray can carry it to the head, else its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - anything unpicklable travels as text
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _write_inputs(folder: Path, shipped: Shipped) -> dict[str, Path | None]:
    """The head's input files on this node's disk, under their own names (their suffix says
    how to read them; a sequence keeps its numbering)."""
    paths: dict[str, Path | None] = {"clip": None}
    for role, (opened, files) in shipped.items():
        where = folder / role
        where.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            (where / Path(name).name).write_bytes(data)
        paths[role] = where / opened if opened else where
    return paths


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


class _StreamingEngines:
    """The node's engines (kept warm between jobs), each handed out with a streaming window store."""

    def __init__(
        self, engines: Any, emit: Callable[[Event], None], await_restore: Callable[[], None]
    ) -> None:
        self.engines, self.emit, self.await_restore = engines, emit, await_restore

    def get(self, name: str) -> Any:
        return _StreamingEngine(self.engines.get(name), self.emit, self.await_restore)


class _StreamingEngine:
    """The node's engine, unchanged but for its window store: each finished window is also
    sent to the head, and the head's saved windows are restored before the first one."""

    def __init__(self, engine: Any, emit: Callable[[Event], None], await_restore: Callable[[], None]) -> None:
        self._engine, self._emit, self._await_restore = engine, emit, await_restore

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def generate(self, prepared: Any, inputs: Any, store: Any, on_step: Any, n_frames: int) -> Any:
        key_text = (Path(store.folder) / "key.json").read_text()
        self._emit(("key", key_text))
        self._await_restore()
        return self._engine.generate(prepared, inputs, _StreamingStore(store, self._emit), on_step, n_frames)


class _StreamingStore:
    def __init__(self, store: Any, emit: Callable[[Event], None]) -> None:
        self._store, self._emit = store, emit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def save(self, index: int, frames: Any, tail: Any) -> None:
        self._store.save(index, frames, tail)
        self._emit(("window", index, frames, tail.detach().cpu()))
