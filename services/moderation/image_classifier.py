"""Image classifiers that look for nudity in the ingested images.

The NudeNet detector (the ``nudenet`` package with its bundled ``320n.onnx``
model) is distributed under an AGPL-3.0 licence text. It is an optional,
swappable component: ``nudenet`` is imported only when
:func:`image_classifier_for` selects it (``image_classifier="nudenet"``);
``image_classifier="none"`` turns image classification off, and any object
satisfying :class:`ImageClassifier` can take its place.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from captioning_common.images import DEFAULT_MAX_PIXELS, open_upright
from captioning_common.onnx import session_options
from services.moderation.settings import ModerationSettings

# NudeNet labels that count as nudity; covered parts, faces, feet, bellies,
# armpits and male breasts do not.
NUDITY_LABELS = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)


@dataclass(frozen=True)
class ImageFinding:
    """One nudity detection: its label, confidence in 0..1 and box (x, y, width, height) relative to the upright image (0..1)."""

    label: str
    score: float
    box: tuple[float, float, float, float] | None = None


class ImageClassifier(Protocol):
    """Finds nudity in an encoded image; implementations must be safe to call from several threads."""

    name: str
    version: str

    def classify(self, image_bytes: bytes) -> list[ImageFinding]:
        """Return the nudity findings in the image; raise ValueError if the bytes are not an image."""
        ...


def decode_bgr(image_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """HxWx3 uint8 BGR array of what a viewer sees: upright RGB from :func:`captioning_common.images.open_upright`.

    Raises ValueError on bytes that are not a usable image.
    """
    try:
        rgb = open_upright(image_bytes, max_pixels)
    except ValueError as error:
        raise ValueError(f"cannot decode image ({len(image_bytes)} bytes): {error}") from error
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


class NudeNetClassifier:
    """NudeNet's bundled 320n ONNX detector; one ONNX Runtime session, shared by all threads."""

    name = "nudenet"

    def __init__(self) -> None:
        import nudenet  # AGPL-3.0 licence text: imported only when selected

        self.version = f"{version('nudenet')}/320n"
        # NudeDetector keeps no per-call state and InferenceSession.run is thread-safe. Its own
        # session spins between calls, which takes CPU from the rest of the pipeline: replaced.
        self._detector = nudenet.NudeDetector()
        model = Path(nudenet.__file__).with_name("320n.onnx")
        self._detector.onnx_session = ort.InferenceSession(str(model), session_options())

    def classify(self, image_bytes: bytes) -> list[ImageFinding]:
        """Return the exposed-nudity detections in the image."""
        pixels = decode_bgr(image_bytes)
        height, width = pixels.shape[:2]
        return [
            ImageFinding(label=d["class"], score=float(d["score"]), box=_relative(d["box"], width, height))
            for d in self._detector.detect(pixels)
            if d["class"] in NUDITY_LABELS
        ]


def _relative(box, width: int, height: int) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return (x / width, y / height, w / width, h / height)


class NoImageClassifier:
    """Image classification turned off: never finds anything."""

    name = "none"
    version = ""

    def classify(self, image_bytes: bytes) -> list[ImageFinding]:
        """Return no findings."""
        return []


def image_classifier_for(settings: ModerationSettings) -> ImageClassifier:
    """Build the image classifier chosen by ``settings.image_classifier`` (loads its model once)."""
    if settings.image_classifier == "nudenet":
        return NudeNetClassifier()
    return NoImageClassifier()
