"""Canaries for what the backend takes from diffusers beyond its public API.

Each test names the private use it guards, so a diffusers upgrade that moves or renames one
fails here first, with the file to change, instead of deep inside a job (or only on a multi-GPU
or offloaded run that the test machines never make)."""

from __future__ import annotations

import inspect

import pytest
import torch

SEQUENCE_PARALLEL = "backend/model/sequence_parallel.py"
LORA_ADAPTERS = "backend/model/lora_adapters.py"
ANIMATE2 = "backend/engines/wan_animate_2.py"


def test_context_parallel_plan_markers_are_where_sequence_parallel_imports_them():
    try:
        from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput
    except ImportError as exc:  # pragma: no cover - the canary's message
        pytest.fail(f"diffusers moved its context-parallel plan markers ({exc}): update {SEQUENCE_PARALLEL}")
    split = ContextParallelInput(split_dim=1, expected_dims=4, split_output=True)
    gather = ContextParallelOutput(gather_dim=1, expected_dims=3)
    assert (split.split_dim, split.expected_dims, split.split_output) == (1, 4, True), SEQUENCE_PARALLEL
    assert (gather.gather_dim, gather.expected_dims) == (1, 3), SEQUENCE_PARALLEL


def test_face_adapter_processors_carry_the_parallel_config_that_sequence_parallel_clears(tiny_model):
    from diffusers import WanAnimateTransformer3DModel

    model = WanAnimateTransformer3DModel.from_pretrained(tiny_model / "transformer")
    adapters = list(model.face_adapter)
    assert adapters, (
        f"WanAnimateTransformer3DModel has no face_adapter blocks any more: update {SEQUENCE_PARALLEL}"
    )
    for adapter in adapters:
        assert hasattr(adapter.processor, "_parallel_config"), (
            f"the face adapter's attention processor lost `_parallel_config`; {SEQUENCE_PARALLEL} sets it to "
            "None to keep the face attention local under context parallelism"
        )


def test_group_offloading_can_be_reapplied_as_lora_adapters_does():
    try:
        from diffusers.hooks.group_offloading import _maybe_remove_and_reapply_group_offloading
    except ImportError as exc:  # pragma: no cover - the canary's message
        pytest.fail(f"diffusers renamed its group-offload re-apply ({exc}): update {LORA_ADAPTERS}")
    params = inspect.signature(_maybe_remove_and_reapply_group_offloading).parameters
    assert list(params)[:1] == ["module"] and len(params) == 1, (
        f"_maybe_remove_and_reapply_group_offloading now takes {list(params)}: update {LORA_ADAPTERS}"
    )
    # A module without offloading passes through untouched.
    layer = torch.nn.Linear(2, 2)
    before = layer.weight.detach().clone()
    _maybe_remove_and_reapply_group_offloading(layer)
    assert torch.equal(layer.weight, before)


@pytest.mark.parametrize("blocks_name", ["WanAnimate2Blocks", "WanAnimate2DistilledBlocks"])
def test_animate2_sub_blocks_the_engine_drives_by_name_are_there(blocks_name):
    import diffusers.modular_pipelines.wan_animate_2 as animate2

    blocks = getattr(animate2, blocks_name)()
    top = blocks.sub_blocks
    wanted = {
        "": ["text_encoder", "image_encoder", "video_encoder", "vae_encoder", "denoise"],
        "image_encoder": ["encode"],
        "video_encoder": ["encode"],
        "denoise": ["prepare_segments", "denoise"],
    }
    for parent, names in wanted.items():
        have = top if not parent else top[parent].sub_blocks
        missing = [n for n in names if n not in have]
        assert not missing, (
            f"{blocks_name}{'.' + parent if parent else ''} lacks {missing}: update {ANIMATE2}"
        )
    loop = top["denoise"].sub_blocks["denoise"]
    steps = [
        "vae_encoder",
        "prev_frames",
        "prepare",
        "scheduler_reset",
        "ref_extract",
        "denoise_inner",
        "decode",
    ]
    missing = [n for n in steps if n not in loop.sub_blocks]
    assert not missing, f"{blocks_name}'s segment loop lacks {missing}: update {ANIMATE2}"
    assert callable(getattr(loop, "get_block_state", None)), (
        f"the segment loop lost get_block_state: {ANIMATE2}"
    )
    # The engine counts steps (progress, cancel) by wrapping scheduler.step on the instance: the
    # inner loop must call it through the component, once per step.
    inner = type(loop.sub_blocks["denoise_inner"])
    src = "".join(
        inspect.getsource(c)
        for c in inner.__mro__
        if c.__module__.startswith("diffusers.modular_pipelines.wan")
    )
    assert "scheduler.step(" in src, (
        f"{blocks_name}'s inner loop no longer calls scheduler.step: update {ANIMATE2}"
    )
