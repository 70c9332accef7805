"""The memory plan for Wan-Animate-2: its sizes read from its own model folder, and the reference
K/V cache it keeps per segment counted in every mode, so "auto" streams the blocks where the whole
model and the cache do not fit (as diffusers' documentation runs it on 80 GB at 720p)."""

from __future__ import annotations

from released_models import ANIMATE2_14B

from backend.model import memory_plan
from backend.model.memory_plan import GIB


def test_animate2_sizes_come_from_its_own_folder(animate2_model):
    sizes = memory_plan.model_sizes(animate2_model / "wan-animate-2")
    assert (sizes.dim, sizes.ffn_dim, sizes.layers) == (24, 32, 2)
    assert sizes.transformer > 0 and sizes.text_encoder > 0 and sizes.vae > 0


def test_reference_cache_is_planned_and_auto_streams_blocks_where_needed():
    cache_720 = memory_plan.reference_cache_bytes(ANIMATE2_14B, 1280, 720, 81)
    cache_480 = memory_plan.reference_cache_bytes(ANIMATE2_14B, 832, 480, 81)
    # K and V for 21 latent frames of 80x45 tokens, width 5120, 40 layers, bf16: about 58 GB.
    assert cache_720 == 2 * 21 * 80 * 45 * 5120 * 2 * 40
    assert 55 < cache_720 / GIB < 60 and cache_480 < cache_720 / 2
    need = memory_plan.animate2_needs(ANIMATE2_14B, 1280, 720, 81)
    assert set(need) == set(memory_plan.ANIMATE2_MODES)
    plain = memory_plan.needs(ANIMATE2_14B, 1280, 720, 81)
    assert need["group_offload"] == plain["group_offload"] + cache_720
    # An 80 GB card streams the blocks at 720p; a 141 GB one keeps everything on the GPU.
    assert memory_plan.choose(need, 80 * GIB, memory_plan.ANIMATE2_MODES) == "group_offload"
    assert memory_plan.choose(need, 141 * GIB, memory_plan.ANIMATE2_MODES) == "resident"
    # A 24 GB card cannot hold even one segment's cache at 720p.
    assert memory_plan.choose(need, 24 * GIB, memory_plan.ANIMATE2_MODES) is None


def test_animate2_plans_the_bf16_weights_it_loads():
    # Animate-2 has no fp8 storage (the request's fp8 is refused), so its plan never halves the
    # weights: at 832x480 the whole model and the cache need more than 90% of 80 GB, and "auto"
    # streams the blocks instead of trying to keep them all on the card.
    need = memory_plan.animate2_needs(ANIMATE2_14B, 832, 480, 81)
    assert need["resident"] == memory_plan.needs(ANIMATE2_14B, 832, 480, 81)["resident"] + (
        memory_plan.reference_cache_bytes(ANIMATE2_14B, 832, 480, 81)
    )
    assert 70 < need["resident"] / GIB < 80
    assert memory_plan.choose(need, 80 * GIB, memory_plan.ANIMATE2_MODES) == "group_offload"
