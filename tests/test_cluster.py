"""Cluster mode on a real local Ray cluster: a head node without GPUs and worker nodes that each
offer one ``wan_gpu`` (standing in for a GPU), the backend over real HTTP as the head's driver,
the tiny model. One cluster and one backend serve the whole module; nodes come and go per test."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from backend_proc import BackendProc, result_frames

from backend.protocol import HealthReply
from wan_animate_blender.core.cluster_status import cluster_lines

ray = pytest.importorskip(
    "ray", reason="cluster mode needs Ray: python -m backend setup --venv DIR --extra ray==2.60.0"
)
from ray.cluster_utils import Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--ray-resource", "wan_gpu", "--device", "cpu"]
SHOT = {"width": 64, "height": 48, "steps": 1, "segment_frames": 9, "overlap": 1, "clip_frames": 17}
# Long enough per window to remove a node between two windows.
LONG_SHOT = {**SHOT, "steps": 20, "clip_frames": 40}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Actors import the backend from this checkout, and keep to one thread on this small machine.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ["OMP_NUM_THREADS"] = "1"
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "object_store_memory": 100 << 20},
    )
    c.workers: list = []  # type: ignore[misc]
    yield c
    c.shutdown()


def add_worker(c) -> object:
    node = c.add_node(num_cpus=1, resources={"wan_gpu": 1}, object_store_memory=100 << 20)
    c.workers.append(node)
    return node


def remove_worker(c, node_id: str | None = None) -> None:
    node = next(n for n in c.workers if node_id in (None, n.node_id))
    c.workers.remove(node)
    c.remove_node(node)


@pytest.fixture(scope="module")
def head(cluster, tmp_path_factory, backend_python, tiny_model):
    data = tmp_path_factory.mktemp("cluster") / "data"
    b = BackendProc(backend_python, data, tiny_model, extra_args=["--ray", cluster.address, *ARGS])
    holder = {"b": b}
    yield holder
    holder["b"].stop()


def body(character: Path, clip: Path, **settings) -> dict:
    return {"character_path": str(character), "clip_path": str(clip), "settings": {**SHOT, **settings}}


def wait_health(b: BackendProc, until, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        cl = b.get("/v1/health").json()["cluster"]
        if until(cl):
            return cl
        assert time.monotonic() < deadline, cl
        time.sleep(0.2)


def test_shots_spread_over_two_worker_nodes_and_all_finish(cluster, head, astronaut_png, carphone_clip):
    b = head["b"]
    add_worker(cluster)
    add_worker(cluster)
    wait_health(b, lambda cl: cl["idle_actors"] == 2)
    ids = [b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, seed=i)).json()["id"] for i in range(4)]
    nodes_seen: set[str] = set()
    deadline = time.monotonic() + 120
    while not all(b.get(f"/v1/jobs/{i}").json()["state"] in ("done", "failed") for i in ids):
        assert time.monotonic() < deadline, "the shots did not finish in time"
        cl = b.get("/v1/health").json()["cluster"]
        nodes_seen |= {j["node_id"] for j in cl["jobs"].values()}
        time.sleep(0.1)
    assert len(nodes_seen) == 2, "both worker nodes ran shots"
    for i in ids:
        st = b.get(f"/v1/jobs/{i}").json()
        assert st["state"] == "done", st
        result = Path(st["result_dir"])
        assert result.parent == b.data_dir.resolve() / "results"  # on the head, fetched over HTTP
        assert len(list(result.glob("frame_*.png"))) == st["frame_count"] > 0
        files = b.get(f"/v1/jobs/{i}/files").json()["files"]
        assert "job.json" in files and b.get(f"/v1/jobs/{i}/files/job.json").json()["engine"]
    health = b.get("/v1/health").json()
    assert health["cluster"]["gpus"] == 2 and health["cluster"]["queued"] == 0
    # The cluster part's keys as every add-on reads them (the type may add, never rename or drop).
    assert list(health["cluster"]) == [
        "address", "resource", "gpus_per_job", "nodes", "gpus", "actors", "idle_actors", "problem",
        "jobs", "queued", "head_ms_per_window",
    ]  # fmt: skip
    assert all(list(n) == ["node_id", "ip", "gpus", "actors", "jobs"] for n in health["cluster"]["nodes"])
    # The add-on's type reads the cluster's health back to the same reply.
    assert HealthReply.from_json(health).to_json() == health
    # What the sidebar shows from that health.
    assert cluster_lines(HealthReply.from_json(health))[0] == "Cluster: 2 GPU nodes, 2 GPUs, 0 queued"


def test_a_node_removed_mid_job_the_job_finishes_elsewhere_with_the_same_frames(
    cluster, head, astronaut_png, carphone_clip
):
    b = head["b"]
    whole = b.run_job(body(astronaut_png, carphone_clip, **LONG_SHOT), timeout=120)
    job_id = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, **LONG_SHOT)).json()["id"]
    st, _ = b.wait(job_id, until=lambda st: (st["window"] or 0) >= 3 or st["finished_at"], timeout=120)
    assert st["state"] == "running", st
    node = b.get("/v1/health").json()["cluster"]["jobs"][job_id]["node_id"]
    remove_worker(cluster, node)
    st, seen = b.wait(job_id, timeout=120)
    assert st["state"] == "done", st
    assert any("was lost" in s["message"] for s in seen)
    job = json.loads((Path(st["result_dir"]) / "job.json").read_text())
    assert job["resumed_windows"] >= 2
    assert (result_frames(Path(st["result_dir"])) == result_frames(whole)).all()
    cl = b.get("/v1/health").json()["cluster"]
    assert node not in {n["node_id"] for n in cl["nodes"]} and cl["gpus"] == 1


def test_a_node_added_later_takes_queued_work(cluster, head, astronaut_png, carphone_clip):
    b = head["b"]
    while cluster.workers:
        remove_worker(cluster)
    cl = wait_health(b, lambda cl: cl["gpus"] == 0)
    assert "ray start --address=" in cl["problem"]
    job_id = b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, seed=11)).json()["id"]
    assert b.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"
    node = add_worker(cluster)
    st, _ = b.wait(job_id, timeout=120)
    assert st["state"] == "done", st
    assert [n["node_id"] for n in b.get("/v1/health").json()["cluster"]["nodes"] if n["gpus"]] == [
        node.node_id
    ]


def test_a_restarted_head_keeps_its_queue(
    cluster, head, backend_python, tiny_model, astronaut_png, carphone_clip
):
    b = head["b"]
    while cluster.workers:
        remove_worker(cluster)
    wait_health(b, lambda cl: cl["gpus"] == 0)
    ids = [
        b.post("/v1/jobs", json=body(astronaut_png, carphone_clip, seed=20 + i)).json()["id"]
        for i in range(2)
    ]
    b.stop()
    b = head["b"] = BackendProc(
        backend_python, b.data_dir, tiny_model, extra_args=["--ray", cluster.address, *ARGS]
    )
    assert [b.get(f"/v1/jobs/{i}").json()["state"] for i in ids] == ["queued", "queued"]
    assert b.get("/v1/health").json()["cluster"]["queued"] == 2
    add_worker(cluster)
    for i in ids:
        st, _ = b.wait(i, timeout=120)
        assert st["state"] == "done", st


def test_without_ray_or_without_a_head_serve_says_what_to_do(tmp_path, backend_python, tiny_model):
    # Ray made unimportable for this one process, as in an environment set up without it.
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), str(ROOT)]))
    cmd = [
        backend_python,
        "-m",
        "backend",
        "serve",
        "--data-dir",
        str(tmp_path / "d"),
        "--model-dir",
        str(tiny_model),
    ]
    out = subprocess.run([*cmd, "--ray", "auto"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0 and "requirements-cluster.txt" in out.stderr, out.stderr[-2000:]
    out = subprocess.run(
        [*cmd, "--ray", "127.0.0.1:9"], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert out.returncode != 0 and "does not answer" in out.stderr and "ray start --head" in out.stderr
