"""Where Wan-Animate-2's weights live: shared by the engine that loads them and by the download
and tiny-model commands that write them."""

from __future__ import annotations

# The model folder's sub-folder per engine: one model folder holds every engine's weights.
ENGINE_FOLDERS = {"wan-animate-2": "wan-animate-2", "wan-animate-2-distilled": "wan-animate-2-distilled"}
HF_REPO_IDS = {
    "wan-animate-2": "Wan-AI/Wan2.2-Animate-2-14B-Diffusers",
    "wan-animate-2-distilled": "Wan-AI/Wan2.2-Animate-2-14B-Distilled-Diffusers",
}
