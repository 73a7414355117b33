"""Checks an image must pass before anything is stored or emitted for it.

The format is sniffed from the bytes (the declared content type is never trusted),
the pixel limit is enforced before the image is decoded, and the whole first frame
is decoded once, upright, so truncated or corrupt files are caught here. The formats
are those of :mod:`captioning_common.images`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from captioning_common.images import SUPPORTED, TooManyPixels, UndecodableImage, UnsupportedFormat, open_upright, sniff_format
from services.ingest.settings import IngestSettings


class ImageRejected(ValueError):
    """An input that is not an acceptable image: machine-readable code, message and HTTP status."""

    def __init__(self, code: str, message: str, http_status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class ValidImage:
    """An accepted image and what was learned about it (width and height as displayed, EXIF orientation applied)."""

    image_id: str
    content_type: str
    width: int
    height: int
    size_bytes: int


def image_id_of(data: bytes) -> str:
    """Content address of an image: lowercase hex SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def validate_image(data: bytes, settings: IngestSettings) -> ValidImage:
    """The ValidImage of ``data``, or ImageRejected with the reason."""
    if not data:
        raise ImageRejected("empty_file", "the file is empty", 400)
    if len(data) > settings.max_bytes:
        raise ImageRejected("file_too_large", f"the file has {len(data)} bytes; the limit is {settings.max_bytes}", 413)
    try:
        content_type = sniff_format(data).mime_type
        width, height = open_upright(data, settings.max_pixels).size
    except UnsupportedFormat as exc:
        message = f"the file is none of the supported formats ({SUPPORTED}); the format is checked from its bytes"
        raise ImageRejected("unsupported_format", message, 415) from exc
    except TooManyPixels as exc:
        raise ImageRejected("too_many_pixels", str(exc), 413) from exc
    except UndecodableImage as exc:
        raise ImageRejected("corrupt_image", str(exc)) from exc
    if min(width, height) < settings.min_side:
        raise ImageRejected("image_too_small", f"the image is {width}x{height}; each side needs at least {settings.min_side} pixels")
    return ValidImage(image_id_of(data), content_type, width, height, len(data))
