"""Image decoding and the tensor layout the captioner's encoder expects."""

from __future__ import annotations

import numpy as np
from PIL import Image

from captioning_common.images import DEFAULT_MAX_PIXELS, open_upright

MEAN, STD = 0.5, 0.5


def to_pixels(image: Image.Image, size: int) -> np.ndarray:
    """uint8 [3, size, size] of an image (RGB, resized with bicubic filtering)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy()


def decode_image(data: bytes, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """uint8 [3, size, size] of encoded image bytes, upright (see :mod:`captioning_common.images`).

    Raises ValueError when they are not a usable image: an unsupported format, more
    pixels than ``max_pixels`` or undecodable data.
    """
    return to_pixels(open_upright(data, max_pixels), size)


def normalise(pixels: np.ndarray) -> np.ndarray:
    """float32 encoder input from uint8 pixels (any leading batch shape)."""
    return ((pixels.astype(np.float32) / 255.0) - MEAN) / STD
