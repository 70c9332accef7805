"""The samplers a window can be denoised with, both as the official Wan2.2 code runs them.

"dpm++" is what the official ``WanAnimate.generate`` runs by default: DPM-Solver++ (the
second-order multistep variant, arXiv 2211.01095) on flow-matching noise levels. The levels are
``shift * s / (1 + (shift - 1) * s)`` for ``s`` going evenly from 1 towards 0 (``steps`` values,
ending at 0 after the last step); the model is told the level times 1000, truncated to an
integer, as the official schedule does. A flow-matching model predicts ``noise - clean``, so at
level ``sigma`` the clean estimate is ``x - sigma * output``.

"unipc" is the official ``WanAnimate.generate``'s other solver (``sample_solver="unipc"``): UniPC on
the same shift, with ``s`` going evenly from 0.999 (the training schedule's top level) to 0. It is
diffusers' UniPC given those levels; left to its own, diffusers' (and so WanAnimatePipeline's)
spans 1 to 0.001 instead, which moves every level and, at some steps, the timestep the model is
told by one.
"""

from __future__ import annotations

import numpy as np
import torch

from ..protocol import SAMPLERS

DEFAULT_SAMPLER = SAMPLERS[0]
DEFAULT_SHIFT = 5.0


class FlowDpmSolver:
    """DPM-Solver++(2M) over shifted flow-matching levels; a fresh one per window."""

    def __init__(self, steps: int, shift: float = DEFAULT_SHIFT, device=None) -> None:
        s = np.linspace(1.0, 0.0, steps + 1)[:steps]
        levels = shift * s / (1 + (shift - 1) * s)
        self.timesteps = torch.from_numpy(levels * 1000).to(device=device, dtype=torch.int64)
        self.sigmas = torch.from_numpy(np.append(levels, 0.0).astype(np.float32))
        self._i = 0
        self._last_clean: torch.Tensor | None = None

    def _lam(self, i: int) -> torch.Tensor:
        # log(alpha / sigma) with alpha = 1 - sigma: -inf at pure noise, +inf when clean.
        sigma = self.sigmas[i]
        return torch.log(1 - sigma) - torch.log(sigma)

    def step(self, output: torch.Tensor, t: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """The latents at the next level from the model's ``output`` at this one (``t``)."""
        i = self._i
        x = latents.to(torch.float32)
        sigma_s, sigma_t = self.sigmas[i], self.sigmas[i + 1]
        # Estimates kept in float32 whatever the model computes in.
        clean = x - sigma_s * output.to(torch.float32)
        h = self._lam(i + 1) - self._lam(i)
        decay = torch.exp(-h) - 1.0
        alpha_t = 1 - sigma_t
        # The first step has no earlier estimate; the last (to level 0) is taken at first order
        # for stability, as the official solver does.
        if self._last_clean is None or i == len(self.timesteps) - 1:
            out = (sigma_t / sigma_s) * x - (alpha_t * decay) * clean
        else:
            r = (self._lam(i) - self._lam(i - 1)) / h
            slope = (1.0 / r) * (clean - self._last_clean)
            out = (sigma_t / sigma_s) * x - (alpha_t * decay) * clean - 0.5 * (alpha_t * decay) * slope
        self._last_clean = clean
        self._i += 1
        return out.to(latents.dtype)


class FlowUniPC:
    """diffusers' UniPC on the official UniPC levels; a fresh one per window."""

    def __init__(self, steps: int, shift: float = DEFAULT_SHIFT, device=None) -> None:
        from diffusers import UniPCMultistepScheduler

        self.scheduler = UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift
        )
        # The official top level is 1 - 1/1000 as the training schedule holds it, in float32.
        top = float(np.float32(1 - 1 / 1000))
        self.scheduler.set_timesteps(sigmas=np.linspace(top, 0.0, steps + 1)[:-1], device=device)
        self.timesteps = self.scheduler.timesteps

    def step(self, output: torch.Tensor, t: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        return self.scheduler.step(output, t, latents, return_dict=False)[0]


def make_sampler(name: str, steps: int, device=None, shift: float = DEFAULT_SHIFT):
    if name == "dpm++":
        return FlowDpmSolver(steps, shift, device)
    if name == "unipc":
        return FlowUniPC(steps, shift, device)
    raise ValueError(f"sampler must be one of {SAMPLERS}, not {name!r}")
