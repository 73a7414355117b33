"""Detector pre- and post-processing (YOLOv3-tiny, COCO-80): letterboxing, zoomed-out views, NMS.

Numpy and Pillow only; the network itself runs wherever the caller runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

DETECTOR_SIZE = 416
PAD_VALUE = 114  # the usual grey of YOLO letterboxes
MAX_DETECTIONS = 100


@dataclass(frozen=True)
class Letterbox:
    """Where the original image sits inside the square model input."""

    scale: float  # input pixels per original pixel
    pad_x: int
    pad_y: int

    def to_original(self, box_xyxy) -> np.ndarray:
        """A box (x1, y1, x2, y2) in input pixels, in original pixels (not clipped)."""
        x1, y1, x2, y2 = (float(v) for v in box_xyxy)
        return np.array([(x1 - self.pad_x) / self.scale, (y1 - self.pad_y) / self.scale,
                         (x2 - self.pad_x) / self.scale, (y2 - self.pad_y) / self.scale])

    def to_relative(self, box_xyxy, original_w: int, original_h: int) -> tuple[float, float, float, float]:
        """(x, y, width, height) of a box in input pixels, relative 0..1 to the original image, clipped to it."""
        if original_w <= 0 or original_h <= 0:
            raise ValueError(f"original size must be positive, got {original_w}x{original_h}")
        x1, y1, x2, y2 = self.to_original(box_xyxy)
        x1, x2 = (min(max(v / original_w, 0.0), 1.0) for v in (x1, x2))
        y1, y2 = (min(max(v / original_h, 0.0), 1.0) for v in (y1, y2))
        return x1, y1, max(x2 - x1, 0.0), max(y2 - y1, 0.0)


def letterbox(image: Image.Image, size: int = DETECTOR_SIZE) -> tuple[np.ndarray, Letterbox]:
    """uint8 [size, size, 3] RGB: the image scaled to fit (aspect kept, bilinear), centred on grey 114."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    if width <= 0 or height <= 0:
        raise ValueError(f"image has no pixels ({width}x{height})")
    factor = min(size / width, size / height)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    resized = rgb if (new_w, new_h) == (width, height) else rgb.resize((new_w, new_h), Image.BILINEAR)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = np.asarray(resized, dtype=np.uint8)
    # rounding makes the applied scale differ slightly per axis; boxes map back with the mean
    applied = (new_w / width + new_h / height) / 2
    return canvas, Letterbox(applied, pad_x, pad_y)


def network_input(pixels: np.ndarray) -> np.ndarray:
    """float32 NCHW in 0..1, the darknet convention, from uint8 [B, H, W, 3] RGB pixels."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"pixels must be uint8 [B, H, W, 3], got {pixels.dtype} {pixels.shape}")
    return (pixels.astype(np.float32) / 255.0).transpose(0, 3, 1, 2).copy()


def zoomed_out(pixels: np.ndarray, factor: int) -> np.ndarray:
    """uint8 [B, S, S, 3]: each square input shrunk ``factor`` times (box filter), centred on grey 114.

    YOLOv3-tiny misses objects that fill the frame (a cat's face, a portrait); the same
    image made smaller, in the middle of the input, shows them at sizes it finds.
    """
    batch, size = pixels.shape[0], pixels.shape[1]
    if factor < 2 or size % factor or pixels.shape[1:] != (size, size, 3):
        raise ValueError(f"cannot zoom [B, {size}, {size}, 3] inputs out {factor} times")
    small = size // factor
    shrunk = pixels.reshape(batch, small, factor, small, factor, 3).mean(axis=(2, 4))
    offset = (size - small) // 2
    canvas = np.full_like(pixels, PAD_VALUE)
    canvas[:, offset:offset + small, offset:offset + small] = np.round(shrunk).astype(np.uint8)
    return canvas


def from_zoomed_out(raw: np.ndarray, factor: int, size: int) -> np.ndarray:
    """Raw rows [..., 5 + classes] of a ``zoomed_out`` view, with centres and sizes in input pixels."""
    offset = (size - size // factor) // 2
    mapped = np.array(raw, dtype=np.float32, copy=True)
    mapped[..., 0:2] = (mapped[..., 0:2] - offset) * factor
    mapped[..., 2:4] *= factor
    return mapped


def detect(run_network: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, zoom_out: tuple[int, ...] = (2,),
           score_threshold: float = 0.25, iou_threshold: float = 0.45, max_detections: int = MAX_DETECTIONS) -> np.ndarray:
    """float32 [B, max_detections, 6] detections of letterboxed uint8 [B, S, S, 3] inputs.

    ``run_network`` maps float32 NCHW input to raw rows [B, N, 5 + classes]. Each input is
    seen as it is and zoomed out by each factor of ``zoom_out``, in one network batch; the
    rows of all views, in input pixels, go through one ``non_max_suppression`` per image.
    """
    pixels = np.asarray(pixels)
    views = [pixels] + [zoomed_out(pixels, factor) for factor in zoom_out]
    raw = run_network(network_input(np.concatenate(views)))
    batch, size = len(pixels), pixels.shape[1]
    rows = [raw[:batch]] + [from_zoomed_out(raw[(i + 1) * batch:(i + 2) * batch], factor, size) for i, factor in enumerate(zoom_out)]
    merged = np.concatenate(rows, axis=1)
    return np.stack([non_max_suppression(image, score_threshold, iou_threshold, max_detections) for image in merged])


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def non_max_suppression(raw: np.ndarray, score_threshold: float = 0.25, iou_threshold: float = 0.45,
                        max_detections: int = MAX_DETECTIONS) -> np.ndarray:
    """float32 [max_detections, 6] rows (x1, y1, x2, y2, score, class) from raw [N, 5 + classes] rows.

    A raw row is (cx, cy, w, h, objectness, class probabilities...). Each box takes its best
    class, scored objectness x class probability; boxes below ``score_threshold`` are dropped,
    the rest suppressed per class, sorted by score; unused rows are zeros (score 0).
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 2 or raw.shape[1] < 6:
        raise ValueError(f"raw detections must be [N, 5 + classes], got shape {raw.shape}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be within 0..1, got {iou_threshold}")
    result = np.zeros((max_detections, 6), dtype=np.float32)
    classes = raw[:, 5:].argmax(axis=1)
    scores = raw[:, 4] * raw[np.arange(len(raw)), 5 + classes]
    keep = scores >= score_threshold
    if not keep.any():
        return result
    centres, sizes = raw[keep, 0:2], raw[keep, 2:4]
    boxes = np.concatenate((centres - sizes / 2, centres + sizes / 2), axis=1)
    scores, classes = scores[keep], classes[keep]
    chosen: list[int] = []
    for label in np.unique(classes):
        members = np.flatnonzero(classes == label)
        members = members[np.argsort(-scores[members], kind="stable")]
        while members.size:
            best, members = members[0], members[1:]
            chosen.append(best)
            members = members[_iou(boxes[best], boxes[members]) <= iou_threshold]
    chosen_array = np.array(chosen, dtype=np.int64)
    chosen_array = chosen_array[np.argsort(-scores[chosen_array], kind="stable")][:max_detections]
    count = len(chosen_array)
    result[:count, :4] = boxes[chosen_array]
    result[:count, 4] = scores[chosen_array]
    result[:count, 5] = classes[chosen_array]
    return result
