"""The character image: checks an artist can act on, and the official framing (fit inside the
output size at its own aspect ratio, padded with black, resized linearly: the official
generation's padding_resize of its reference image, src_ref.png, to the pose frames' size)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ..protocol import RequestError


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
    # Cameras store the sensor's pixels and a tag saying how to turn them; viewers (and
    # Blender's image editor) show them turned.
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[:, :, 3]
        if (alpha < 255).any():
            raise RequestError(
                f"The character image {path.name} has transparent pixels. Wan-Animate needs an opaque "
                "image: turn off Film > Transparent when rendering, or flatten it onto a background."
            )
    return _to_rgb8(img)


def _to_rgb8(img: Image.Image) -> Image.Image:
    """8-bit RGB from any mode Pillow opens. Pillow's own convert clips 16-bit and float grey
    to 255 (a 16-bit render turns almost white) and converts CMYK without its ICC profile."""
    if img.mode.startswith("I"):  # 16-bit grey PNG/TIFF ("I;16", or "I" for 32-bit ints)
        grey = np.asarray(img).astype(np.float64) / 257.0
    elif img.mode == "F":  # float grey: linear 0..1
        grey = np.asarray(img, dtype=np.float64) * 255.0
    else:
        if img.mode == "CMYK" and img.info.get("icc_profile"):
            try:
                profile = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
                return ImageCms.profileToProfile(
                    img, profile, ImageCms.createProfile("sRGB"), outputMode="RGB"
                )
            except (ImageCms.PyCMSError, OSError):
                pass  # a broken profile: the plain conversion below is still close
        return img.convert("RGB")
    grey8 = np.clip(np.round(grey), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey8[:, :, None], 3, axis=2), "RGB")


def fit_character(img: Image.Image, width: int, height: int) -> Image.Image:
    """The reference image the model reads for a ``width`` x ``height`` output."""
    from .pose_format import padding_resize

    return Image.fromarray(padding_resize(np.asarray(img.convert("RGB")), width, height))
