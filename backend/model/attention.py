"""The attention kernel a transformer runs with: what "auto" picks on this machine, and
why a requested one cannot run here."""

from __future__ import annotations

import importlib.util

from ..protocol import ATTENTION_CHOICES, RequestError

# Our names -> (diffusers attention backend, the package it needs or None, needs CUDA).
ATTENTION = {
    "sdpa": ("native", None, False),  # PyTorch picks flash, cuDNN or memory-efficient itself
    "sdpa_flash": ("_native_flash", None, True),
    "sdpa_cudnn": ("_native_cudnn", None, True),
    "sdpa_math": ("_native_math", None, False),
    "flash_attn": ("flash", "flash_attn", True),
    "flash_attn_3": ("_flash_3", "flash_attn_interface", True),
    "sage": ("sage", "sageattention", True),
}
# What "auto" tries, best first (FlashAttention-3 is Hopper-only and the fastest there).
_AUTO_ORDER = ("flash_attn_3", "sage", "sdpa")


def attention_available(name: str, cuda: bool) -> str | None:
    """None when ``name`` can run here, else why not."""
    _backend, package, needs_cuda = ATTENTION[name]
    if needs_cuda and not cuda:
        return f"attention '{name}' runs on an NVIDIA GPU only"
    if package and importlib.util.find_spec(package) is None:
        return f"attention '{name}' needs the {package} package in the backend's environment"
    return None


# Backends that can exchange tokens between sequence-parallel ranks (they return log-sum-exp or
# run under Ulysses' all-to-all in diffusers).
_PARALLEL_OK = ("sdpa", "sdpa_flash", "sdpa_cudnn", "flash_attn", "sage")


def resolve_attention(requested: str, cuda: bool, parallel: bool = False) -> str:
    if requested not in ATTENTION_CHOICES:
        raise RequestError(f"attention must be one of {ATTENTION_CHOICES}, not {requested!r}")
    if requested == "auto":
        order = [n for n in _AUTO_ORDER if not parallel or n in _PARALLEL_OK]
        return next(n for n in order if attention_available(n, cuda) is None)
    why = attention_available(requested, cuda)
    if why is None and parallel and requested not in _PARALLEL_OK:
        why = f"attention '{requested}' cannot be shared across several GPUs"
    if why:
        raise RequestError(why + "; choose 'auto' or 'sdpa'.")
    return requested
