"""LoRA adapters on the transformer, and the per-job set-up that gives it this job's attention
kernel and LoRAs.

Applied to a transformer, not a pipeline, so the sequence-parallel followers (which hold only
the transformer) configure themselves with the very same calls as rank 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..protocol import RequestError
from .attention import ATTENTION


@dataclass(frozen=True)
class LoraSpec:
    path: str
    strength: float


@dataclass
class TransformerSetup:
    """What a transformer currently has applied, so a job changes only what differs."""

    attention: str | None = None
    # File identity -> what was read from the file (layout, rank, layers, skipped keys); its
    # adapter is named "lora_<identity>".
    adapters: dict[str, dict[str, Any]] = field(default_factory=dict)
    lora_reports: list[dict[str, Any]] = field(default_factory=list)


def _file_identity(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def set_up_transformer(
    transformer: torch.nn.Module,
    setup: TransformerSetup,
    attention: str,
    loras: list[LoraSpec],
    pipeline=None,
) -> TransformerSetup:
    """Give ``transformer`` this job's attention kernel and LoRAs (at their strengths)."""
    from .lora_files import read_lora

    if setup.attention != attention:
        transformer.set_attention_backend(ATTENTION[attention][0])
        setup.attention = attention
    wanted: dict[str, float] = {}
    reports = []
    for spec in loras:
        path = Path(spec.path)
        if not path.is_file():
            raise RequestError(f"LoRA file not found: {path}")
        ident = _file_identity(path)
        name = f"lora_{ident}"
        if ident not in setup.adapters:
            # Once PEFT has wrapped a layer, the Linear is its ".base_layer".
            shapes = {
                n.removesuffix(".base_layer"): (m.out_features, m.in_features)
                for n, m in transformer.named_modules()
                if isinstance(m, torch.nn.Linear)
            }
            lora = read_lora(path, shapes)
            transformer.load_lora_adapter(lora.state_dict, adapter_name=name, prefix=None, _pipeline=pipeline)
            _exact_lora_weights(transformer, name, lora.state_dict)
            setup.adapters[ident] = {
                "layout": lora.layout,
                "rank": lora.rank,
                "layers": len(lora.state_dict) // 2,
                "skipped_keys": len(lora.skipped),
            }
        wanted[name] = wanted.get(name, 0.0) + spec.strength
        # A LoRA still loaded from the last job is reported as fully as a freshly read one.
        reports.append({"file": path.name, "strength": spec.strength, **setup.adapters[ident]})
    unused = [i for i in setup.adapters if f"lora_{i}" not in wanted]
    if unused:
        # LoRAs of earlier jobs go: the model is exactly the base model again without them.
        transformer.delete_adapters([f"lora_{i}" for i in unused])
        for i in unused:
            del setup.adapters[i]
    if wanted:
        transformer.set_adapters(list(wanted), list(wanted.values()))
    setup.lora_reports = reports
    return setup


def _exact_lora_weights(transformer: torch.nn.Module, adapter: str, state: dict[str, torch.Tensor]) -> None:
    """Hold the adapter's matrices in the compute dtype, from the file's own values.

    PEFT makes each adapter layer in its base layer's dtype: under fp8 weight storage that is
    float8, which neither holds the LoRA's precision nor multiplies on every device."""
    from diffusers.hooks.group_offloading import _maybe_remove_and_reapply_group_offloading

    # The patch embedding is never stored in fp8 (diffusers skips it): it has the compute dtype.
    dtype = transformer.patch_embedding.weight.dtype
    for name, module in transformer.named_modules():
        for part in ("lora_A", "lora_B"):
            layers = getattr(module, part, None)
            if isinstance(layers, torch.nn.ModuleDict) and adapter in layers:
                weight = layers[adapter].weight
                weight.data = state[f"{name}.{part}.weight"].to(device=weight.device, dtype=dtype)
    # Group offloading keeps its own CPU copies of each group's tensors: renew them (diffusers
    # has no public call for this; enable_group_offload again would stack a second set of hooks).
    _maybe_remove_and_reapply_group_offloading(transformer)
