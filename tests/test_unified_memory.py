"""Apple Silicon's unified memory in the memory plan: offloading saves nothing there, so only the
whole model on the GPU is planned, against the memory macOS lets the GPU use."""

from __future__ import annotations

import pytest
from released_models import WAN_ANIMATE_14B

from backend.model import memory_plan
from backend.protocol import RequestError

GB = 1024**3


def test_unified_memory_plans_the_whole_model_and_says_what_fits():
    need_480 = memory_plan.needs(WAN_ANIMATE_14B, 832, 480, 77)
    need_720 = memory_plan.needs(WAN_ANIMATE_14B, 1280, 720, 77)
    # macOS lets the GPU use about three quarters of the RAM: 96 GB -> 72, 128 GB -> 96, 64 GB -> 48.
    assert memory_plan.resolve("auto", need_480, 72 * GB, unified=True) == "resident"
    assert memory_plan.resolve("auto", need_720, 96 * GB, unified=True) == "resident"
    with pytest.raises(RequestError, match="Apple Silicon"):
        memory_plan.resolve("auto", need_480, 48 * GB, unified=True)
    # On a discrete GPU of the same size, block offload would fit: not so on shared memory.
    assert memory_plan.resolve("auto", need_480, 48 * GB) == "model_offload"
    with pytest.raises(RequestError, match="offloading saves nothing"):
        memory_plan.resolve("group_offload", need_480, 72 * GB, unified=True)
