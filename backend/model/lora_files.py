"""LoRA files in the layouts Wan users have, read into the transformer's own module names.

Three layouts are in circulation for Wan 14B LoRAs (step distillation, relighting, styles):
- diffusers/PEFT on diffusers names: ``[transformer.]blocks.0.attn1.to_q.lora_A.weight``;
- the original Wan names, from the official code, musubi-tuner or LightX2V:
  ``diffusion_model.blocks.0.self_attn.q.lora_down.weight`` with ``.alpha`` (or PEFT's
  ``base_model.model.blocks.0.self_attn.q.lora_A.weight`` with an adapter_config.json; the
  official relighting_lora.ckpt is PEFT's ``blocks.0.self_attn.q.lora_A.weight`` in a torch
  checkpoint, rank 128 = alpha);
- kohya/ComfyUI flattened names: ``lora_unet_blocks_0_self_attn_q.lora_down.weight``.

Every layout becomes ``blocks.N.<diffusers module>.lora_A/lora_B.weight`` with the alpha/rank
scale folded into lora_B, so one PEFT adapter (alpha = rank) reproduces the file exactly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..protocol import RequestError

# Original Wan module names -> diffusers' names inside a block.
_WAN_TO_DIFFUSERS = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.k_img": "attn2.add_k_proj",
    "cross_attn.v_img": "attn2.add_v_proj",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
}
_PREFIXES = ("transformer.", "diffusion_model.", "base_model.model.", "model.")
_DOWN = (".lora_down.weight", ".lora_A.weight", ".lora_A.default.weight")
_UP = (".lora_up.weight", ".lora_B.weight", ".lora_B.default.weight")
_KOHYA = re.compile(r"^lora_unet_blocks_(\d+)_(self_attn|cross_attn|ffn)_(\w+)$")


@dataclass
class LoraFile:
    state_dict: dict[str, torch.Tensor]  # blocks.N.module.lora_A/B.weight
    layout: str
    rank: int
    skipped: list[str] = field(default_factory=list)  # keys with nothing to apply them to


def _module_name(raw: str) -> tuple[str, str]:
    """A file's module name -> (diffusers module name, layout)."""
    for p in _PREFIXES:
        if raw.startswith(p):
            raw = raw[len(p) :]
            break
    m = _KOHYA.match(raw)
    if m:
        block, group, rest = m.groups()
        # Underscores stand for dots, except in the image keys' own names (k_img, v_img).
        raw = f"blocks.{block}.{group}.{rest if rest.endswith('_img') else rest.replace('_', '.')}"
        layout = "kohya"
    else:
        layout = "diffusers"
    m = re.match(r"^blocks\.(\d+)\.(.+)$", raw)
    if m and m.group(2) in _WAN_TO_DIFFUSERS:
        return f"blocks.{m.group(1)}.{_WAN_TO_DIFFUSERS[m.group(2)]}", "kohya" if layout == "kohya" else "wan"
    return raw, layout


def _split_key(key: str) -> tuple[str, str] | None:
    for kind, suffixes in (("down", _DOWN), ("up", _UP), ("alpha", (".alpha",))):
        for s in suffixes:
            if key.endswith(s):
                return key[: -len(s)], kind
    return None


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A .safetensors file, or a torch checkpoint (the official relighting_lora.ckpt is a dict
    with the PEFT state under "state_dict"), read without running any code from it."""
    if path.suffix in (".ckpt", ".pt", ".pth", ".bin"):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
            raise RequestError(f"Cannot read the LoRA {path.name} as a tensor checkpoint: {exc}") from exc
        if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
            data = data["state_dict"]
        if not isinstance(data, dict):
            raise RequestError(f"The LoRA {path.name} holds no named tensors.")
        return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise RequestError(f"Cannot read the LoRA {path.name} as safetensors: {exc}") from exc


def read_lora(path: Path, modules: dict[str, tuple[int, int]]) -> LoraFile:
    """Read ``path`` for a model whose Linear layers are ``modules`` (name -> out, in features)."""
    path = Path(path)
    if not path.is_file():
        raise RequestError(f"LoRA file not found: {path}")
    raw = _read_tensors(path)
    # PEFT saves alpha beside the weights, not in them.
    peft_alpha = None
    config = path.with_name("adapter_config.json")
    if config.is_file():
        cfg = json.loads(config.read_text())
        peft_alpha = cfg.get("lora_alpha")

    parts: dict[str, dict[str, torch.Tensor]] = {}
    layouts: set[str] = set()
    skipped: list[str] = []
    for key, tensor in raw.items():
        split = _split_key(key)
        if split is None:
            skipped.append(key)  # e.g. full-weight "diff"/"diff_b" tensors for norms and biases
            continue
        module, kind = split
        name, layout = _module_name(module)
        if name not in modules:
            skipped.append(key)
            continue
        layouts.add(layout)
        parts.setdefault(name, {})[kind] = tensor
    state: dict[str, torch.Tensor] = {}
    ranks = set()
    for name, p in parts.items():
        if "down" not in p or "up" not in p:
            skipped.extend(f"{name} ({k})" for k in p)
            continue
        down, up = p["down"].float(), p["up"].float()
        rank = down.shape[0]
        if (up.shape[0], down.reshape(rank, -1).shape[1]) != modules[name]:
            out_f, in_f = modules[name]
            raise RequestError(
                f"The LoRA {path.name} does not fit this model: its {name} maps "
                f"{down.reshape(rank, -1).shape[1]} to {up.shape[0]} features where the model has "
                f"{in_f} to {out_f}. It was probably trained for another Wan size (1.3B, 5B or 14B)."
            )
        ranks.add(rank)
        alpha = float(p["alpha"]) if "alpha" in p else float(peft_alpha or rank)
        state[f"{name}.lora_A.weight"] = down.reshape(rank, -1)
        state[f"{name}.lora_B.weight"] = up.reshape(up.shape[0], rank) * (alpha / rank)
    if not state:
        sample = ", ".join(list(raw)[:3])
        raise RequestError(
            f"The LoRA {path.name} has no weights for Wan-Animate's transformer (its keys look like "
            f"{sample}). It may be made for another model."
        )
    if len(ranks) > 1:
        # One PEFT adapter holds one rank; pad the smaller ones with zeros, which adds nothing.
        top = max(ranks)
        for k in list(state):
            t = state[k]
            if k.endswith("lora_A.weight") and t.shape[0] < top:
                state[k] = torch.cat([t, t.new_zeros(top - t.shape[0], t.shape[1])])
            elif k.endswith("lora_B.weight") and t.shape[1] < top:
                state[k] = torch.cat([t, t.new_zeros(t.shape[0], top - t.shape[1])], dim=1)
    return LoraFile(state, "+".join(sorted(layouts)), max(ranks), skipped)
