"""Checks an image must pass before anything is stored or emitted for it.

The format is sniffed from the bytes (the declared content type is never trusted),
size and pixel limits are enforced before the image is decoded, and the whole
image is decoded once so truncated or corrupt files are caught here.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

from services.ingest.settings import IngestSettings

# (magic test, MIME type, Pillow format name)
_SIGNATURES = (
    (lambda head: head.startswith(b"\xff\xd8\xff"), "image/jpeg", "JPEG"),
    (lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"), "image/png", "PNG"),
    (lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP", "image/webp", "WEBP"),
)


class ImageRejected(ValueError):
    """An input that is not an acceptable image: machine-readable code, message and HTTP status."""

    def __init__(self, code: str, message: str, http_status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class ValidImage:
    """An accepted image and what was learned about it."""

    image_id: str
    content_type: str
    width: int
    height: int
    size_bytes: int


def image_id_of(data: bytes) -> str:
    """Content address of an image: lowercase hex SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def sniff_format(data: bytes) -> tuple[str, str]:
    """(MIME type, Pillow format) from the leading bytes; ImageRejected when not JPEG, PNG or WebP."""
    head = data[:16]
    for matches, mime, pillow_format in _SIGNATURES:
        if matches(head):
            return mime, pillow_format
    raise ImageRejected("unsupported_format", "the file is not a JPEG, PNG or WebP image (checked from its bytes)", 415)


def validate_image(data: bytes, settings: IngestSettings) -> ValidImage:
    """The ValidImage of ``data``, or ImageRejected with the reason."""
    if not data:
        raise ImageRejected("empty_file", "the file is empty", 400)
    if len(data) > settings.max_bytes:
        raise ImageRejected("file_too_large", f"the file has {len(data)} bytes; the limit is {settings.max_bytes}", 413)
    mime, pillow_format = sniff_format(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            image = Image.open(io.BytesIO(data), formats=[pillow_format])
        with image:
            width, height = image.size
            if width * height > settings.max_pixels:
                raise ImageRejected(
                    "too_many_pixels", f"the image has {width}x{height} pixels; the limit is {settings.max_pixels}", 413
                )
            if min(width, height) < settings.min_side:
                raise ImageRejected("image_too_small", f"the image is {width}x{height}; each side needs at least {settings.min_side} pixels")
            image.load()
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", f"the image exceeds the pixel limit: {exc}", 413) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageRejected):
            raise
        raise ImageRejected("corrupt_image", f"the {pillow_format} data cannot be decoded: {exc}") from exc
    return ValidImage(image_id_of(data), mime, width, height, len(data))
