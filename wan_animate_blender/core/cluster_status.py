"""The cluster lines of the sidebar, from a backend's ``/v1/health`` (cluster mode only).

Draw code must never wait on the network: health is fetched on a worker thread at most every
few seconds and the sidebar shows the last lines it got."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

# For the annotation only: tests import this module outside the extension's package, where the
# protocol is not its grandparent's.
if TYPE_CHECKING:
    from ...backend.protocol import HealthReply

REFRESH_S = 5.0


def cluster_lines(health: HealthReply) -> list[str]:
    """Nodes, GPUs, queue, which job runs where, and what to do when no node can run jobs."""
    cl = health.cluster
    if cl is None:
        return []
    nodes = [n for n in cl.nodes if n.gpus]
    lines = [f"Cluster: {len(nodes)} GPU nodes, {cl.gpus:g} GPUs, {cl.queued} queued"]
    for job_id, where in sorted(cl.jobs.items()):
        lines.append(f"{job_id[:8]} on {where.ip}: window {where.window}/{where.windows}")
    if cl.problem:
        lines.append(cl.problem)
    return lines


class HealthLines:
    """The last cluster lines, refreshed in the background."""

    def __init__(self, every_s: float = REFRESH_S) -> None:
        self.every_s = every_s
        self._lines: list[str] = []
        self._at = -every_s
        self._busy = threading.Lock()

    def lines(self, fetch: Callable[[], HealthReply]) -> list[str]:
        if time.monotonic() - self._at >= self.every_s and self._busy.acquire(blocking=False):
            self._at = time.monotonic()
            threading.Thread(target=self._refresh, args=(fetch,), daemon=True).start()
        return self._lines

    def _refresh(self, fetch: Callable[[], HealthReply]) -> None:
        try:
            self._lines = cluster_lines(fetch())
        except Exception:  # noqa: BLE001 - an unreachable backend shows in the job's own status
            pass
        finally:
            self._busy.release()
