"""Sequence parallelism: one job's transformer spread over the GPUs of one machine.

Launched as ``torchrun --nproc-per-node N -m backend serve ...``. Rank 0 is the whole backend
(HTTP, queue, preprocessing, encoders, VAE); the other ranks hold only the transformer and join
each of its forward passes, whose inputs rank 0 broadcasts. Each rank keeps 1/N of the video
tokens, and self-attention exchanges them through diffusers' context parallelism (Ulysses
all-to-all, or ring attention where the attention backend returns log-sum-exp).

diffusers ships no parallel plan for WanAnimateTransformer3DModel, and the obvious one (split the
flattened token sequence into N contiguous pieces) breaks the face adapter: it attends the tokens
of latent frame t to the motion features of frame t, so every rank must hold tokens of every
frame, in frame order. Here rank r holds the r-th span of each frame's tokens instead: the tokens
are reordered rank-major before the split and back after the gather, and the face adapter's
attention stays local (its keys, the motion features, are never split).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch

from ..protocol import RequestError

MODES = ("ulysses", "ring")
_STOP, _LOAD, _CONFIGURE, _FORWARD = "stop", "load", "configure", "forward"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def check_layout(tokens_per_frame: int, heads: int, world: int, mode: str) -> None:
    """Refuse, with what to change, a size the ranks cannot share evenly."""
    check_heads(heads, 1, mode)  # the mode first
    if tokens_per_frame % world:
        raise RequestError(
            f"With {world} GPUs each frame's {tokens_per_frame} tokens (width/16 x height/16) must "
            f"divide by {world}: pick a width or height whose sixteenth is a multiple of {world}."
        )
    check_heads(heads, world, mode)


def check_heads(heads: int, world: int, mode: str) -> None:
    """What can be checked before any size is known: the mode, and heads for Ulysses."""
    if mode not in MODES:
        raise RequestError(f"sequence parallel mode must be one of {MODES}, not {mode!r}")
    if mode == "ulysses" and heads % world:
        raise RequestError(
            f"Ulysses attention splits the model's {heads} heads over {world} GPUs, which does not "
            "divide: use ring mode or a GPU count that divides the heads."
        )


def to_rank_major(x: torch.Tensor, tokens_per_frame: int, world: int) -> torch.Tensor:
    """(B, T*HW, ...) frame-major -> (B, world*T*HW/world, ...), rank r's spans contiguous."""
    b, s = x.shape[:2]
    t = s // tokens_per_frame
    rest = x.shape[2:]
    return x.reshape(b, t, world, tokens_per_frame // world, *rest).transpose(1, 2).reshape(b, s, *rest)


def to_frame_major(x: torch.Tensor, tokens_per_frame: int, world: int) -> torch.Tensor:
    b, s = x.shape[:2]
    t = s // tokens_per_frame
    rest = x.shape[2:]
    return x.reshape(b, world, t, tokens_per_frame // world, *rest).transpose(1, 2).reshape(b, s, *rest)


class _Layout:
    """Tokens per latent frame of the call in flight, read off the transformer's input."""

    def __init__(self, world: int, patch: tuple[int, int, int], heads: int, mode: str) -> None:
        self.world, self.patch, self.heads, self.mode = world, patch, heads, mode
        self.tokens_per_frame = 0

    def note_input(self, _module, args, kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        h, w = hidden.shape[-2:]
        self.tokens_per_frame = (h // self.patch[1]) * (w // self.patch[2])
        check_layout(self.tokens_per_frame, self.heads, self.world, self.mode)

    def rank_major(self, x: torch.Tensor) -> torch.Tensor:
        return to_rank_major(x, self.tokens_per_frame, self.world)

    def frame_major(self, x: torch.Tensor) -> torch.Tensor:
        return to_frame_major(x, self.tokens_per_frame, self.world)


class _RankMajorRope(torch.nn.Module):
    """The model's rotary embedding, reordered like the tokens it rotates (split after this)."""

    def __init__(self, rope: torch.nn.Module, layout: _Layout) -> None:
        super().__init__()
        self.inner = rope
        self.layout = layout

    def forward(self, hidden_states: torch.Tensor):
        cos, sin = self.inner(hidden_states)
        return self.layout.rank_major(cos), self.layout.rank_major(sin)


@contextmanager
def _cpu_mesh_allowed():
    # diffusers picks each rank's device as rank % accelerator count, which divides by zero on
    # a machine without one; the gloo-on-CPU runs (the parity test) need a count of 1 there.
    if torch.accelerator.device_count():
        yield
        return
    real = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = real


def enable(transformer: torch.nn.Module, world: int, mode: str = "ulysses") -> None:
    """Spread ``transformer`` over the ``world`` ranks; every rank calls this together."""
    from diffusers import ContextParallelConfig

    # The plan's input/output markers are not exported by diffusers' public API (0.42).
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    cfg = transformer.config
    layout = _Layout(world, tuple(cfg.patch_size), int(cfg.num_attention_heads), mode)
    check_heads(layout.heads, world, mode)
    transformer.register_forward_pre_hook(layout.note_input, with_kwargs=True)
    transformer.rope = _RankMajorRope(transformer.rope, layout)

    def reorder_block_input(_module, args, kwargs):
        if args:
            return (layout.rank_major(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": layout.rank_major(kwargs["hidden_states"])}

    # torch's own hooks run outside diffusers' split/gather (which wrap forward itself), so the
    # reorder happens before the split and the inverse after the gather.
    transformer.blocks[0].register_forward_pre_hook(reorder_block_input, with_kwargs=True)
    transformer.proj_out.register_forward_hook(lambda _m, _a, out: layout.frame_major(out))
    split = ContextParallelInput(split_dim=1, expected_dims=4, split_output=True)
    plan = {
        "rope": {0: split, 1: split},
        "blocks.0": {"hidden_states": ContextParallelInput(split_dim=1, expected_dims=3, split_output=False)},
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }
    config = ContextParallelConfig(
        **({"ulysses_degree": world} if mode == "ulysses" else {"ring_degree": world})
    )
    with _cpu_mesh_allowed():
        transformer.enable_parallelism(config=config, cp_plan=plan)
    for adapter in transformer.face_adapter:
        # Its keys are the motion features, whole on every rank: local attention is exact and
        # spares an all-to-all per face block. diffusers has no public switch for one processor.
        adapter.processor._parallel_config = None


def init_process_group() -> torch.device:
    """Join the torchrun group; this rank's device (its own GPU, or the CPU with gloo)."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and os.environ.get("WAN_ANIMATE_PARALLEL_CPU") != "1"
    if cuda:
        torch.cuda.set_device(local)
    # The followers wait in a broadcast between jobs for as long as the backend runs.
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(days=365))
    return torch.device("cuda", local) if cuda else torch.device("cpu")


def _broadcast_command(command: tuple | None) -> tuple:
    import torch.distributed as dist

    box = [command]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _close_group(command: tuple | None) -> None:
    """Every rank leaves together: rank 0 sends ``command`` (the stop), all meet at a barrier,
    then each closes its side. A rank that closed while another still talked would abort
    ("terminate called without an active exception", seen once under load)."""
    import torch.distributed as dist

    if command is not None:
        _broadcast_command(command)
    dist.barrier()
    dist.destroy_process_group()


class Leader:
    """Rank 0's side: every transformer call's inputs go to the other ranks first."""

    def __init__(self, mode: str = "ulysses") -> None:
        self.world = world_size()
        self.mode = mode

    def load(self, transformer: torch.nn.Module, model_dir: str, dtype: str, fp8: bool) -> None:
        _broadcast_command((_LOAD, model_dir, dtype, fp8, self.mode))
        enable(transformer, self.world, self.mode)
        transformer.register_forward_pre_hook(self._send_call, with_kwargs=True)

    def set_up_for_job(self, attention: str, loras: list) -> None:
        """Every rank runs the same kernels with the same LoRAs (paths are on this machine)."""
        _broadcast_command((_CONFIGURE, attention, [(lo.path, lo.strength) for lo in loras]))

    def _send_call(self, _module, args, kwargs):
        import torch.distributed as dist

        if args:
            raise RuntimeError("the parallel transformer is called with keyword arguments only")
        meta = {
            k: ("tensor", tuple(v.shape), str(v.dtype).removeprefix("torch."))
            if isinstance(v, torch.Tensor)
            else ("value", v)
            for k, v in kwargs.items()
        }
        _broadcast_command((_FORWARD, meta))
        for v in kwargs.values():
            if isinstance(v, torch.Tensor):
                dist.broadcast(v.contiguous(), src=0)

    def stop(self) -> None:
        _close_group((_STOP,))


def follow(device: torch.device) -> None:
    """A rank other than 0: hold the transformer and join its calls until rank 0 stops."""
    import torch.distributed as dist
    from diffusers import WanAnimateTransformer3DModel

    from .lora_adapters import LoraSpec, TransformerSetup, set_up_transformer

    transformer = None
    setup = TransformerSetup()
    while True:
        command = _broadcast_command(None)
        if command[0] == _STOP:
            _close_group(None)
            return
        if command[0] == _LOAD:
            _, model_dir, dtype, fp8, mode = command
            transformer = WanAnimateTransformer3DModel.from_pretrained(
                model_dir, subfolder="transformer", torch_dtype=getattr(torch, dtype)
            )
            if fp8:
                transformer.enable_layerwise_casting(
                    storage_dtype=torch.float8_e4m3fn, compute_dtype=getattr(torch, dtype)
                )
            transformer.to(device).eval()
            enable(transformer, world_size(), mode)
            setup = TransformerSetup()
            continue
        if command[0] == _CONFIGURE:
            _, attention, loras = command
            # A file rank 0 could read but this rank cannot would desynchronise the ranks; the
            # paths are the same machine's, so both read the same file.
            set_up_transformer(transformer, setup, attention, [LoraSpec(p, w) for p, w in loras])
            continue
        kwargs: dict[str, Any] = {}
        for k, (kind, *spec) in command[1].items():
            if kind == "value":
                kwargs[k] = spec[0]
            else:
                shape, dtype = spec
                t = torch.empty(shape, dtype=getattr(torch, dtype), device=device)
                dist.broadcast(t, src=0)
                kwargs[k] = t
        with torch.no_grad():
            transformer(**kwargs)
