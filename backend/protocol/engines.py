"""The model families a job can run on and what each one reads and offers: the add-on shows
only what applies, and the backend refuses the rest before a model loads."""

from __future__ import annotations

from typing import Any

MODES = ("animate", "replace")
# Model families a job can run on; "wan-animate" is Wan2.2-Animate.
ENGINES = ("wan-animate", "wan-animate-2", "wan-animate-2-distilled")
ENGINE_LABELS = {
    "wan-animate": "Wan2.2-Animate",
    "wan-animate-2": "Wan-Animate-2",
    "wan-animate-2-distilled": "Wan-Animate-2 distilled",
}
# What each engine reads and offers, so the add-on shows only what applies and the backend
# refuses the rest before a model loads. fps: the rate it generates at; segment_frames: its
# window length; skeleton: driven by a drawn skeleton (editable guides, pose points, retargeting);
# guidance: it samples with classifier-free guidance (the distilled model does not);
# guidance_scale: the scale it is made for (1.0 turns classifier-free guidance off); ignores: the
# settings it has no use for (Wan-Animate-2 runs its own scheduler on flex attention in bf16,
# with no LoRA loader or step cache), refused unless left at their defaults.
ENGINE_FEATURES: dict[str, dict[str, Any]] = {
    "wan-animate": {
        "modes": MODES,
        "skeleton": True,
        "prompt": True,
        "guidance": True,
        "fps": 30.0,
        "segment_frames": 77,
        "steps": 20,
        "guidance_scale": 1.0,
        "ignores": (),
    },
    "wan-animate-2": {
        "modes": ("animate",),
        "skeleton": False,
        "prompt": True,
        "guidance": True,
        "fps": 24.0,
        "segment_frames": 81,
        "steps": 40,
        "guidance_scale": 3.0,
        "ignores": ("loras", "fp8", "step_cache", "attention", "sampler"),
    },
    "wan-animate-2-distilled": {
        "modes": ("animate",),
        "skeleton": False,
        "prompt": True,
        "guidance": False,
        "fps": 24.0,
        "segment_frames": 81,
        "steps": 4,
        "guidance_scale": 1.0,
        # It samples without guidance whatever the scale.
        "ignores": ("loras", "fp8", "step_cache", "attention", "sampler", "guidance_scale"),
    },
}
