"""Output size planning: the character's aspect ratio at the model's pixel budget."""

from __future__ import annotations

import math

RESOLUTION_CLASSES = {"preview": 256 * 144, "480p": 832 * 480, "720p": 1280 * 720}


def plan_output_size(char_w: int, char_h: int, quality: str = "480p") -> tuple[int, int]:
    """Width and height near the class's pixel count, at the character's aspect,
    each side a multiple of 16 (the VAE's 8x stride times the 2x2 patch)."""
    if char_w <= 0 or char_h <= 0:
        raise ValueError("the character image has no size")
    area = RESOLUTION_CLASSES[quality]
    aspect = char_w / char_h
    w = math.sqrt(area * aspect)
    h = w / aspect
    return max(16, int(w // 16) * 16), max(16, int(h // 16) * 16)
