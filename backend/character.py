"""The character image: checks an artist can act on, and the official framing
(fit inside the output size at its own aspect ratio, padded with black)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .api_types import RequestError


def load_character(path: Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise RequestError(f"Character image not found: {path}. Render a still or pick an existing image.")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise RequestError(
            f"Cannot read the character image {path.name}: {exc}. Save it as PNG or JPEG."
        ) from exc
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[:, :, 3]
        if (alpha < 255).any():
            raise RequestError(
                f"The character image {path.name} has transparent pixels. Wan-Animate needs an opaque "
                "image: turn off Film > Transparent when rendering, or flatten it onto a background."
            )
    return img.convert("RGB")


def fit_character(img: Image.Image, width: int, height: int) -> Image.Image:
    scale = min(width / img.width, height / img.height)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    canvas.paste(img.resize((w, h), Image.Resampling.LANCZOS), ((width - w) // 2, (height - h) // 2))
    return canvas
