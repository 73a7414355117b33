"""Image decoding and the tensor layout the captioner's encoder expects."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

MEAN, STD = 0.5, 0.5


def to_pixels(image: Image.Image, size: int) -> np.ndarray:
    """uint8 [3, size, size] of an image (RGB, resized with bicubic filtering)."""
    rgb = image.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy()


def decode_image(data: bytes, size: int, max_pixels: int = 50_000_000) -> np.ndarray:
    """uint8 [3, size, size] of encoded JPEG/PNG/WebP bytes; ValueError when they are not a usable image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            image = Image.open(io.BytesIO(data))
        with image:
            if image.format not in ("JPEG", "PNG", "WEBP"):
                raise ValueError(f"unsupported image format {image.format}")
            if image.width * image.height > max_pixels:
                raise ValueError(f"image of {image.width}x{image.height} pixels exceeds {max_pixels}")
            image.load()
            return to_pixels(image, size)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image exceeds the pixel limit: {exc}") from exc
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"undecodable image: {exc}") from exc


def normalise(pixels: np.ndarray) -> np.ndarray:
    """float32 encoder input from uint8 pixels (any leading batch shape)."""
    return ((pixels.astype(np.float32) / 255.0) - MEAN) / STD
