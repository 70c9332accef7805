"""Cluster mode (``serve --ray ADDRESS``): the HTTP API, token and job store stay on the head;
jobs run on Ray actors, one per GPU (or per ``--ray-resource`` unit), placed by Ray.

The head keeps everything that must outlive a worker node: the queue (SQLite), each job's
finished windows (sent back as each completes, in ``<data>/windows`` as a local job keeps
them) and the results (sent back as files into the result folder). A node that dies mid-job
puts the job back at the head of the queue; the next free actor resumes it after its last
finished window. A job lost with its node several times in a row fails with the reasons.

Ray's ports have no authentication: the head connects to the Ray address the studio gives
and nothing of Ray goes through the HTTP front."""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..job.job_inputs import key_hash, resolve_inputs
from ..protocol import ClusterHealth, ClusterJob, ClusterNode, JobRequest, JobStatus
from .job_store import JobStore
from .worker import record_failure, stage_reporter

# A job lost with its node this many times in a row fails instead of being retried forever.
MAX_NODE_LOSSES = 3
POLL_S = 0.5


class ClusterUnavailable(RuntimeError):
    """Ray is missing or the cluster cannot be reached; the message says what to do."""


def connect(address: str) -> Any:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine runs) as its driver."""
    try:
        import ray
    except ImportError:
        raise ClusterUnavailable(
            "Ray is not installed in the backend's environment. Install it with:\n"
            f"  {sys.executable} -m pip install -r backend/requirements-cluster.txt\n"
            "(or set the environment up with `python -m backend setup --venv DIR --extra ray==2.60.0`)."
        ) from None
    if address != "auto":
        # Ray waits minutes for a head that is not there; a plain connection says so in seconds.
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
        except (OSError, ValueError) as exc:
            raise ClusterUnavailable(
                f"The Ray head at {address!r} does not answer ({exc}). Check that `ray start --head` runs "
                "there and that this machine reaches it on the private network (host:port, default 6379)."
            ) from None
    try:
        ray.init(address=address, namespace="wan-animate", log_to_driver=False, logging_level="warning")
    except Exception as exc:  # noqa: BLE001 - Ray raises several types for an unreachable head
        raise ClusterUnavailable(
            f"Could not reach the Ray head at {address!r}: {exc}\n"
            "Start Ray on the head machine with `ray start --head --node-ip-address=PRIVATE_IP --port=6379` "
            "and pass --ray PRIVATE_IP:6379 (or --ray auto on that machine)."
        ) from None
    return ray


def cluster_factory(
    address: str, data_dir: Path, model_dir: Path, resource: str, gpus_per_job: float, device: str
) -> Callable[[JobStore, Path, Callable[[], None]], ClusterWorker]:
    """Connect now (so a wrong address fails before the HTTP port opens); the worker is made
    with the app's job store."""
    ray = connect(address)

    def make(store: JobStore, uploads: Path, after_job: Callable[[], None]) -> ClusterWorker:
        return ClusterWorker(
            ray, store, data_dir, uploads, model_dir, resource, gpus_per_job, device, after_job
        )

    return make


@dataclass
class _Slot:
    """One actor: starting until it answers ``where``, then idle or running a job."""

    actor: Any
    ready: Any  # the ObjectRef of where()
    info: dict[str, Any] = field(default_factory=dict)
    job: str | None = None


class ClusterWorker:
    """The JobWorker's interface over a Ray cluster: submit, status, cancel, health."""

    roots: list[Path] | None = None  # remote use: the folders the head reads a job's files from

    def __init__(
        self,
        ray: Any,
        store: JobStore,
        data_dir: Path,
        uploads_dir: Path,
        model_dir: Path,
        resource: str = "GPU",
        gpus_per_job: float = 1,
        device: str = "auto",
        after_job: Callable[[], None] | None = None,
    ) -> None:
        from .cluster_node import NodeRunner

        self.ray, self.store = ray, store
        self.data_dir, self.uploads_dir = Path(data_dir).resolve(), Path(uploads_dir)
        self.model_dir = Path(model_dir).resolve()
        self.resource, self.gpus_per_job, self.device = resource, gpus_per_job, device
        self.after_job = after_job
        need = {"num_gpus": gpus_per_job} if resource == "GPU" else {"resources": {resource: gpus_per_job}}
        # The job runs in a thread of the actor; cancel and restore must reach it meanwhile.
        self._actor_class = ray.remote(num_cpus=0, max_concurrency=2, max_restarts=0, **need)(NodeRunner)
        self._slots: list[_Slot] = []
        self._running: dict[str, JobStatus] = {}
        self._where: dict[str, dict[str, Any]] = {}  # job id -> the node it runs on
        self._losses: dict[str, list[str]] = {}
        self._cancelled: set[str] = set()
        self._window_cost = [0, 0.0]  # windows received, head seconds spent taking them in
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.last_error: str | None = None
        self._snapshot = ClusterHealth(problem="connecting to the cluster")
        self._thread = threading.Thread(target=self._loop, name="wan-animate-cluster", daemon=True)

    # --- the JobWorker interface -------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def current(self) -> JobStatus | None:
        return next(iter(self._running.values()), None)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for job_id in list(self._running):
            self._cancel_running(job_id)

    def submit(self, req: JobRequest, user: str | None = None) -> JobStatus:
        st = self.store.add(req, user)
        self._wake.set()
        return st

    def status(self, job_id: str) -> JobStatus | None:
        cur = self._running.get(job_id)
        if cur is not None:
            return JobStatus.from_json(cur.to_json())
        return self.store.get(job_id)

    def cancel(self, job_id: str) -> JobStatus | None:
        cur = self._running.get(job_id)
        if cur is not None:
            self._cancel_running(job_id)
            cur.message = "Cancelling…"
            return JobStatus.from_json(cur.to_json())
        st = self.store.get(job_id)
        if st is None or st.finished or st.state != "queued":
            return st
        st.state = st.stage = "cancelled"
        st.message = "Cancelled before it started"
        st.finished_at = time.time()
        if self.store.save(st, only_if="queued"):
            return st
        return self.cancel(job_id)

    def cluster_health(self) -> ClusterHealth:
        n, spent = self._window_cost
        return replace(
            self._snapshot,
            jobs={
                job_id: ClusterJob(**self._where.get(job_id, {}), window=st.window, windows=st.windows)
                for job_id, st in list(self._running.items())
            },
            queued=self.store.count("queued"),
            head_ms_per_window=round(1000 * spent / n, 2) if n else None,
        )

    # --- scheduling -----------------------------------------------------------------------------

    def _cancel_running(self, job_id: str) -> None:
        self._cancelled.add(job_id)
        slot = next((s for s in self._slots if s.job == job_id), None)
        if slot is not None:
            try:
                slot.actor.cancel.remote(job_id)
            except Exception:  # noqa: BLE001 - a dead actor cancels nothing; its job stops anyway
                pass

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - the scheduler outlives a flaky cluster
                self.last_error = f"cluster scheduling: {type(exc).__name__}: {exc}"
                traceback.print_exc()
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _tick(self) -> None:
        ray = self.ray
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        alive = {n["NodeID"] for n in nodes}
        with self._lock:
            # Actors on a node that left are gone; a running job learns it from its own call.
            self._slots = [s for s in self._slots if not s.info or s.info["node_id"] in alive or s.job]
            wanted = sum(int(n["Resources"].get(self.resource, 0) // self.gpus_per_job) for n in nodes)
            while len(self._slots) < wanted:
                actor = self._actor_class.options(name=None).remote(str(self.model_dir), self.device)
                self._slots.append(_Slot(actor, actor.where.remote()))
            starting = [s for s in self._slots if not s.info]
        if starting:
            done, _ = ray.wait([s.ready for s in starting], num_returns=len(starting), timeout=0)
            for s in starting:
                if s.ready in done:
                    try:
                        s.info = ray.get(s.ready)
                    except Exception as exc:  # noqa: BLE001 - an actor that cannot start is dropped
                        self.last_error = f"a worker actor failed to start: {exc}"
                        with self._lock:
                            self._slots.remove(s)
        self._snapshot = self._describe(nodes)
        if self.last_error and self.last_error.startswith("could not read the queue"):
            self.last_error = None
        for slot in [s for s in self._slots if s.info and s.job is None]:
            try:
                st = self.store.claim_next()
            except Exception as exc:  # noqa: BLE001 - the scheduler outlives a bad disk
                self.last_error = f"could not read the queue: {exc}"
                return
            if st is None:
                return
            slot.job = st.id
            self._running[st.id] = st
            self._where[st.id] = {k: slot.info[k] for k in ("node_id", "ip", "accelerators")}
            threading.Thread(target=self._job_thread, args=(slot, st), daemon=True).start()

    def _describe(self, nodes: list[dict[str, Any]]) -> ClusterHealth:
        per_node = [
            ClusterNode(
                node_id=n["NodeID"],
                ip=n.get("NodeManagerAddress"),
                gpus=n["Resources"].get(self.resource, 0),
                actors=sum(1 for s in self._slots if s.info.get("node_id") == n["NodeID"]),
                jobs=[s.job for s in self._slots if s.job and s.info.get("node_id") == n["NodeID"]],
            )
            for n in nodes
        ]
        most = max((n.gpus for n in per_node), default=0)
        problem = None
        if most == 0:
            problem = (
                f"No node of the cluster offers a GPU (Ray resource {self.resource!r}): jobs wait in the "
                "queue. On each GPU machine run `ray start --address=HEAD_IP:6379` (add --num-gpus=N if "
                "Ray does not see its GPUs)."
            )
        elif most < self.gpus_per_job:
            problem = (
                f"A job needs {self.gpus_per_job:g} GPUs on one machine but the largest node has {most:g}: "
                "lower --ray-gpus-per-job or add a machine with that many GPUs."
            )
        return ClusterHealth(
            address=self.ray.get_runtime_context().gcs_address,
            resource=self.resource,
            gpus_per_job=self.gpus_per_job,
            nodes=per_node,
            gpus=sum(n.gpus for n in per_node),
            actors=len(self._slots),
            idle_actors=sum(1 for s in self._slots if s.info and s.job is None),
            problem=problem,
        )

    # --- one job on one actor -----------------------------------------------------------------

    def _job_thread(self, slot: _Slot, st: JobStatus) -> None:
        try:
            self._run(slot, st)
        finally:
            slot.job = None
            self._running.pop(st.id, None)
            self._where.pop(st.id, None)
            self._cancelled.discard(st.id)
            self._wake.set()
            if self.after_job is not None:
                try:
                    self.after_job()
                except Exception:  # noqa: BLE001 - housekeeping must never stop the queue
                    traceback.print_exc()

    def _run(self, slot: _Slot, st: JobStatus) -> None:
        ray = self.ray
        report = stage_reporter(self.store, st)

        where = f"node {slot.info['node_id'][:8]} ({slot.info['ip']})"
        report(message=f"Starting on {where}")
        transfer = _Transfer(self, st)
        try:
            req = self.store.request(st.id)
            shipped = ship_inputs(req, self.uploads_dir, self.roots)
            # The node writes into its own scratch folder; the head places the result.
            remote_req = {**req.to_json(), "output_dir": None}
            gen = slot.actor.run.options(num_returns="streaming").remote(st.id, remote_req, shipped)
            for ref in gen:
                t0 = time.perf_counter()
                ev = ray.get(ref)
                transfer.handle(ev, slot, report)
                if ev[0] == "window":
                    self._window_cost[0] += 1
                    self._window_cost[1] += time.perf_counter() - t0
            if transfer.outcome is None:
                raise RuntimeError("the worker node ended the job without a result")
        except Exception as exc:  # noqa: BLE001 - node losses are retried, the rest fail the job
            transfer.discard()
            if _node_lost(ray, exc) and st.id not in self._cancelled and not self._stop.is_set():
                self._requeue(slot, st, exc, where)
                return
            if st.id in self._cancelled:
                from ..job.progress import Cancelled

                exc = Cancelled()
            record_failure(st, exc)
        else:
            if isinstance(transfer.outcome, BaseException):
                record_failure(st, transfer.outcome)
                if st.id in self._cancelled and st.state == "failed":
                    st.state = st.stage = "cancelled"
                    st.message = "Cancelled; no frames were kept"
            else:
                transfer.publish(st, req, self._losses.get(st.id, []))
        self._losses.pop(st.id, None)
        st.finished_at = time.time()
        try:
            self.store.save(st)
        except Exception as exc:  # noqa: BLE001 - the outcome stays visible until the database takes it
            self.last_error = f"could not record job {st.id}: {exc}"
            traceback.print_exc()

    def _requeue(self, slot: _Slot, st: JobStatus, exc: BaseException, where: str) -> None:
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)
        try:
            self.ray.kill(slot.actor)
        except Exception:  # noqa: BLE001 - already gone
            pass
        reasons = self._losses.setdefault(st.id, [])
        reasons.append(f"{where} was lost: {_first_line(exc)}")
        if len(reasons) >= MAX_NODE_LOSSES:
            st.state = st.stage = "failed"
            st.error = st.message = (
                f"The job was lost with its worker node {len(reasons)} times in a row; not retrying. "
                "Reasons: " + "; ".join(reasons) + ". Check those machines (memory, drivers, network)."
            )
            self._losses.pop(st.id, None)
            st.finished_at = time.time()
        else:
            st.state, st.stage = "queued", "queued"
            st.message = (
                f"Worker {where} was lost mid-job; waiting for another node, where it resumes after "
                "its last finished window"
            )
        try:
            self.store.save(st)
        except Exception as exc2:  # noqa: BLE001
            self.last_error = f"could not record job {st.id}: {exc2}"
        self._wake.set()


class _Transfer:
    """The head's side of one job's stream: windows into the head's window store, result
    files into a partial result folder renamed into place when the job is done."""

    def __init__(self, worker: ClusterWorker, st: JobStatus) -> None:
        self.worker, self.st = worker, st
        self.store: Any = None
        self.partial: Path | None = None
        self.outcome: dict[str, Any] | BaseException | None = None

    def handle(self, ev: tuple[Any, ...], slot: _Slot, report: Callable[..., None]) -> None:
        kind = ev[0]
        if kind == "progress":
            report(**ev[1])
        elif kind == "key":
            self._restore(ev[1], slot, report)
        elif kind == "window":
            self.store.save(ev[1], ev[2], ev[3])
        elif kind == "file":
            if self.partial is None:
                from ..job.result_folder import partial_result_dir

                req = self.worker.store.request(self.st.id)
                parent = Path(req.output_dir) if req.output_dir else self.worker.data_dir / "results"
                self.partial = partial_result_dir(parent, self.st.id)
            target = self.partial / ev[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(ev[2])
        elif kind == "done":
            self.outcome = ev[1]
        elif kind == "error":
            self.outcome = ev[1]

    def _restore(self, key_text: str, slot: _Slot, report: Callable[..., None]) -> None:
        import json

        from ..generation.window_store import WindowStore

        key = json.loads(key_text)
        self.store = WindowStore(self.worker.data_dir / "windows" / key_hash(key), key)
        # Every saved window is sent; the node counts how many run in a row from the first.
        windows, i = [], 0
        while self.store.has(i):
            windows.append((self.store.frames(i), self.store.tail(i)))
            i += 1
        if windows:
            report(message=f"Resuming after window {len(windows)} (saved on the head)")
        self.worker.ray.get(slot.actor.restore.remote(self.st.id, key_text, windows))

    def discard(self) -> None:
        if self.partial is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial = None

    def publish(self, st: JobStatus, req: JobRequest, losses: list[str]) -> None:
        from ..job.result_folder import publish_result

        result = self.outcome
        assert isinstance(result, dict) and self.partial is not None
        final = publish_result(self.partial, req.name, st.id)
        if self.store is not None:
            self.store.remove()  # the frames are in the result now
        st.state = st.stage = "done"
        st.progress, st.eta_s = 1.0, 0.0
        st.result_dir, st.frame_count, st.fps = str(final), result["frame_count"], result["fps"]
        notes = [
            *result.get("warnings", ()),
            *(f"{lost}; resumed on another node" for lost in losses),
        ]
        st.message = f"Done: {st.frame_count} frames" + "".join(f"; note: {w}" for w in notes)


def ship_inputs(
    req: JobRequest, uploads_dir: Path, roots: list[Path] | None = None
) -> dict[str, tuple[str, list[tuple[str, bytes]]]]:
    """The request's files as bytes, to travel through Ray's object store: role -> (the file
    the job opens, every file that role needs). An image sequence travels whole. ``roots``
    (remote use): each file is read only if it resolves into them now."""
    from ..job.job_inputs import confine, confine_request
    from ..preprocess.clip_reading import IMAGE_EXTENSIONS, _sequence_files

    out: dict[str, tuple[str, list[tuple[str, bytes]]]] = {}
    paths = resolve_inputs(req, uploads_dir)
    confine_request(req, paths, roots)
    for role, path in paths.items():
        if path is None:
            continue
        if role == "clip" and (path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS):
            files = _sequence_files(path)
            for f in files:
                confine(f, roots, "reference clip's frame")
            out[role] = ("" if path.is_dir() else path.name, [(f.name, f.read_bytes()) for f in files])
        else:
            out[role] = (path.name, [(path.name, path.read_bytes())])
    return out


def _node_lost(ray: Any, exc: BaseException) -> bool:
    lost = (
        ray.exceptions.RayActorError,
        ray.exceptions.ObjectLostError,
        ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.RaySystemError,
    )
    return isinstance(exc, lost)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if "died" in line or "lost" in line.lower():
            return line.strip()[:300]
    return (text.splitlines() or [type(exc).__name__])[0][:300]
