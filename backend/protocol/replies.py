"""The replies of GET /v1/health and POST /v1/check, typed: the backend builds them and sends
``to_json()``; the add-on reads them with ``from_json``.

``from_json`` keeps to the keys it knows (a newer backend may send more) and gives each field
it does not find its default (an older backend may send fewer). ``to_json`` writes the keys
as the backend has always sent them, leaving out only those it sends just in some replies."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _known(cls: type, data: Any, what: str) -> dict[str, Any]:
    """The keys of ``data`` that ``cls`` has; a null where the field is never null (a list, a
    count) is left out, so the field keeps its default rather than break the reader."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(data).__name__}")
    nullable = {f.name: f.default is None for f in fields(cls)}
    return {k: v for k, v in data.items() if k in nullable and (v is not None or nullable[k])}


def _without_none(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not (k in names and v is None)}


@dataclass
class ClusterNode:
    """One node of the Ray cluster, as the head sees it."""

    node_id: str = ""
    ip: str | None = None
    gpus: float = 0  # of the cluster's job resource (GPU unless --ray-resource names another)
    actors: int = 0
    jobs: list[str] = field(default_factory=list)  # ids of the jobs running there

    @classmethod
    def from_json(cls, data: Any) -> ClusterNode:
        return cls(**_known(cls, data, "a cluster node"))


@dataclass
class ClusterJob:
    """Where a running job is on the cluster, and how far it has come."""

    node_id: str | None = None
    ip: str | None = None
    accelerators: dict[str, list[str]] | None = None  # kind -> the ids the job's actor holds
    window: int = 0
    windows: int = 0

    # Where a job runs is known a moment after it starts; until then only its progress is sent.
    _SOMETIMES = ("node_id", "ip", "accelerators")

    def to_json(self) -> dict[str, Any]:
        return _without_none(asdict(self), self._SOMETIMES)

    @classmethod
    def from_json(cls, data: Any) -> ClusterJob:
        return cls(**_known(cls, data, "a cluster job"))


@dataclass
class ClusterHealth:
    """The cluster part of the health reply (a backend in cluster mode only)."""

    address: str | None = None
    resource: str | None = None
    gpus_per_job: float | None = None
    nodes: list[ClusterNode] = field(default_factory=list)
    gpus: float = 0
    actors: int = 0
    idle_actors: int = 0
    problem: str | None = None  # why no job can run now, and what to do
    jobs: dict[str, ClusterJob] = field(default_factory=dict)  # job id -> where it runs
    queued: int = 0
    head_ms_per_window: float | None = None  # the head's cost of taking in one window

    # Unknown until the head has first asked the cluster.
    _SOMETIMES = ("address", "resource", "gpus_per_job")

    def to_json(self) -> dict[str, Any]:
        data = _without_none(asdict(self), self._SOMETIMES)
        data["jobs"] = {k: v.to_json() for k, v in self.jobs.items()}
        return data

    @classmethod
    def from_json(cls, data: Any) -> ClusterHealth:
        known = _known(cls, data, "the cluster health")
        nodes = [ClusterNode.from_json(n) for n in known.pop("nodes", [])]
        jobs = {str(k): ClusterJob.from_json(v) for k, v in known.pop("jobs", {}).items()}
        return cls(**known, nodes=nodes, jobs=jobs)


@dataclass
class HealthReply:
    """GET /v1/health: whether the backend is up and can run a job, and what it is doing."""

    status: str = "degraded"  # "ok": the worker runs, the model folder and the database are fine
    database: str = "ok"  # "ok", or what is wrong with the job database ("locked"...)
    version: str = ""
    pid: int = 0
    worker_alive: bool = False
    worker_error: str | None = None
    model_dir: str = ""
    model_dir_problem: str | None = None  # what is missing from the model folder
    model_loaded: bool = False
    device: str | None = None  # where the loaded model runs
    queued: int = 0
    running: str | None = None  # the running job's id, when the asker may see it
    busy: bool = False  # a job runs (perhaps another user's)
    user: str | None = None  # who asked (the tokens file's user name)
    admin: bool = False
    free_disk_bytes: int | None = None  # in the backend's data folder
    unreadable_jobs: int = 0  # rows of the job database it could not read
    cluster: ClusterHealth | None = None  # cluster mode only

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["cluster"]
        if self.cluster is not None:
            data["cluster"] = self.cluster.to_json()
        return data

    @classmethod
    def from_json(cls, data: Any) -> HealthReply:
        known = _known(cls, data, "the health reply")
        cluster = known.pop("cluster", None)
        return cls(**known, cluster=ClusterHealth.from_json(cluster) if cluster else None)


@dataclass
class CheckReply:
    """POST /v1/check: what a job with this request would find in its clip. ``ok`` False (with
    ``error``) when the job would fail for want of a performer. The followed person on the
    checked frame (``clip_frame``, ``box``, ``face_box``, ``skeleton``) is sent only when one
    was found; ``preview_png``: that frame annotated, base64. A cast's reply is its first row's,
    with every row's warnings and each row's own reply in ``cast``."""

    ok: bool = True
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    people: dict[str, int] | None = None  # clip frame looked at -> people seen on it
    clip_frame: int | None = None  # the frame the performer was found on
    box: list[float] | None = None  # the performer's box there (x0, y0, x1, y1, clip pixels)
    face_box: list[int] | None = None
    skeleton: bool = False  # enough of the performer's body was seen to draw a skeleton
    preview_png: str | None = None
    cast: list[CheckReply] | None = None

    _PERFORMER = ("clip_frame", "box", "face_box", "skeleton")

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.clip_frame is None:
            data = {k: v for k, v in data.items() if k not in self._PERFORMER}
        data = _without_none(data, ("error", "cast"))
        if self.cast is not None:
            data["cast"] = [row.to_json() for row in self.cast]
        return data

    @classmethod
    def from_json(cls, data: Any) -> CheckReply:
        known = _known(cls, data, "the clip check's reply")
        rows = known.pop("cast", None)
        return cls(**known, cast=[cls.from_json(r) for r in rows] if rows is not None else None)
