"""Step caching: skip a denoising step's transformer pass when its output would barely change.

Between neighbouring steps the model's output moves roughly in proportion to its input: after
two full passes the ratio k = (relative output change) / (relative input change) is known, and
at a later step k times the input's relative change since the last full pass predicts the
output's. While that prediction stays under ``threshold`` the last output is reused. This works
on the whole transformer call, so it needs nothing from the model's internals (the face adapter
between blocks, sequence parallel ranks that only follow rank 0's calls) and resets per window.
"""

from __future__ import annotations

import torch


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().mean() / b.float().abs().mean().clamp_min(1e-8))


class StepCache:
    def __init__(self, threshold: float, steps: int) -> None:
        self.threshold = threshold
        self.steps = steps
        self.skipped = 0
        self._last_in: torch.Tensor | None = None
        self._last_out: torch.Tensor | None = None
        self._k: float | None = None

    def cached(self, step: int, latents: torch.Tensor) -> torch.Tensor | None:
        """The output to reuse at ``step`` (from 0), or None when the model must run."""
        if self.threshold <= 0 or self._k is None or self._last_in is None or step >= self.steps - 1:
            return None  # off, still learning k, or the last step, which sets the final detail
        if self._k * _rel(latents, self._last_in) < self.threshold:
            self.skipped += 1
            return self._last_out
        return None

    def computed(self, latents: torch.Tensor, output: torch.Tensor) -> None:
        if self._last_in is not None and self._last_out is not None:
            change_in = _rel(latents, self._last_in)
            if change_in > 0:
                self._k = _rel(output, self._last_out) / change_in
        self._last_in, self._last_out = latents, output
