"""Classifier pre- and post-processing (EfficientNet-lite0, ImageNet-1k): numpy and Pillow only."""

from __future__ import annotations

import numpy as np
from PIL import Image

CLASSIFIER_SIZE = 224
FEATURES = 1280  # width of the global-pooled penultimate features
CLASSES = 1000


CENTRE_CROP = 0.875  # ImageNet's evaluation protocol: shorter side to 256, centre 224


def classifier_pixels(image: Image.Image, size: int = CLASSIFIER_SIZE) -> np.ndarray:
    """uint8 [size, size, 3] RGB of the image's centre square (87.5% of its shorter side), bilinear.

    The classifier was trained and evaluated on such crops; squeezing the whole image into
    a square distorts shapes and cost it the rocket, the palace and the daisy of the
    real-photo set.
    """
    rgb = image.convert("RGB")
    side = min(rgb.size) * CENTRE_CROP
    left, top = (rgb.width - side) / 2, (rgb.height - side) / 2
    return np.asarray(rgb.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side)), dtype=np.uint8)


def scale(pixels: np.ndarray) -> np.ndarray:
    """float32 NCHW network input, (x - 127) / 128, from uint8 HWC pixels ([H, W, 3] or [B, H, W, 3])."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 3:
        pixels = pixels[None]
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"pixels must be [H, W, 3] or [B, H, W, 3], got shape {pixels.shape}")
    return np.ascontiguousarray((pixels.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2).copy()


def top_k(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(class indices, probabilities) of the ``k`` most probable classes, best first, along the last axis."""
    probabilities = np.asarray(probabilities)
    if not 1 <= k <= probabilities.shape[-1]:
        raise ValueError(f"k must be between 1 and {probabilities.shape[-1]}, got {k}")
    indices = np.argsort(-probabilities, axis=-1, kind="stable")[..., :k]
    return indices, np.take_along_axis(probabilities, indices, axis=-1)
