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

import cv2
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


# The classes of NudeNet's 320n detector, in the order of its output columns.
NUDENET_CLASSES = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
_INPUT_SIDE = 320
_MIN_SCORE, _NMS_MIN_SCORE, _NMS_MAX_OVERLAP = 0.2, 0.25, 0.45  # NudeNet's own thresholds


@dataclass(frozen=True)
class Detection:
    """One box of the detector, in pixels of the upright image: (x, y, width, height)."""

    label: str
    score: float
    box: tuple[float, float, float, float]


class NudeNetClassifier:
    """NudeNet's bundled 320n ONNX detector, run on one ONNX Runtime session shared by all threads.

    The package's own ``NudeDetector`` decodes the model's 2,100 candidate boxes in a Python
    loop (about 6 ms of CPU an image, a third of the model's time); here they are decoded
    with array operations, to the same detections.
    """

    name = "nudenet"

    def __init__(self) -> None:
        import nudenet  # AGPL-3.0 licence text: imported only when selected

        self.version = f"{version('nudenet')}/320n"
        model = Path(nudenet.__file__).with_name("320n.onnx")
        # InferenceSession.run is thread-safe; session_options() keeps its threads from spinning.
        self._session = ort.InferenceSession(str(model), session_options())
        self._input = self._session.get_inputs()[0].name

    def classify(self, image_bytes: bytes) -> list[ImageFinding]:
        """Return the exposed-nudity detections in the image."""
        pixels = decode_bgr(image_bytes)
        height, width = pixels.shape[:2]
        return [
            ImageFinding(label=d.label, score=d.score, box=_relative(d.box, width, height)) for d in self.detect(pixels) if d.label in NUDITY_LABELS
        ]

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        """Every detection (any class) in an HxWx3 BGR image."""
        (output,) = self._session.run(None, {self._input: _model_input(pixels)})
        return _detections(output[0], width=pixels.shape[1], height=pixels.shape[0])


def _model_input(pixels: np.ndarray) -> np.ndarray:
    """1x3x320x320 in 0..1: the BGR image padded at the right and bottom to a square, then resized.

    The channels stay in BGR order: the package's own reading swaps them twice, so BGR is
    what its model is given there, and what its thresholds were chosen on.
    """
    height, width = pixels.shape[:2]
    side = max(height, width)
    square = cv2.copyMakeBorder(pixels, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT)
    return cv2.dnn.blobFromImage(square, 1 / 255.0, (_INPUT_SIDE, _INPUT_SIDE), (0, 0, 0), swapRB=False, crop=False)


def _detections(candidates: np.ndarray, width: int, height: int) -> list[Detection]:
    """The boxes kept from the model's (4 + classes) x N candidates (centre, size, class scores)."""
    rows = candidates.T
    class_scores = rows[:, 4:]
    scores = class_scores.max(axis=1)
    kept = scores >= _MIN_SCORE
    rows, scores, classes = rows[kept], scores[kept], class_scores[kept].argmax(axis=1)
    side = max(width, height)  # the padded square the model saw, scaled to 320
    centre_x, centre_y, box_w, box_h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    x = np.clip((centre_x - box_w / 2) * side / _INPUT_SIDE, 0, width)
    y = np.clip((centre_y - box_h / 2) * side / _INPUT_SIDE, 0, height)
    w = np.minimum(box_w * side / _INPUT_SIDE, width - x)
    h = np.minimum(box_h * side / _INPUT_SIDE, height - y)
    boxes = np.stack([x, y, w, h], axis=1)
    chosen = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), _NMS_MIN_SCORE, _NMS_MAX_OVERLAP)
    return [Detection(NUDENET_CLASSES[classes[i]], float(scores[i]), tuple(float(v) for v in boxes[i])) for i in chosen]


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
