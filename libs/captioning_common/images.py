"""Opening uploaded images: the format sniffed from the bytes, a pixel limit, upright RGB pixels.

Ingest validation, the Triton models and moderation all open images here, so they agree
on what counts as an image and on what it looks like:

- the format comes from the leading bytes, never from a declared type or a file name;
- width x height is checked against a limit before any pixel is decoded (decompression bombs);
- only the first frame (or the primary image) of animated GIF, WebP, AVIF and HEIF is read;
- the EXIF orientation is applied, so phone photos come out upright;
- every mode ends as 8-bit RGB: 16-bit grey is scaled, transparency is composited on white.

HEIC/HEIF is read by pillow-heif (registered with Pillow on first use, for HEIF only),
AVIF by Pillow's own plugin. Every refusal is a :class:`UnusableImage` (a ``ValueError``).
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import ExifTags, Image

DEFAULT_MAX_PIXELS = 40_000_000
"""Largest width x height any stage opens unless configured otherwise (ingest's default limit)."""


class UnusableImage(ValueError):
    """Bytes that cannot be used as an image; the message says why."""


class UnsupportedFormat(UnusableImage):
    """The bytes are not in any supported format."""


class TooManyPixels(UnusableImage):
    """The image declares more pixels than the limit; nothing was decoded."""


class UndecodableImage(UnusableImage):
    """The bytes look like a supported format but cannot be decoded (truncated or corrupt)."""


@dataclass(frozen=True)
class ImageFormat:
    """A supported format: its name, the MIME type reported for it, the Pillow plugin that reads it."""

    name: str
    mime_type: str
    pillow_format: str
    matches: Callable[[bytes], bool] = field(repr=False, compare=False)


# ISO base media file brands (the ftyp box) of HEVC-coded HEIF, generic HEIF and AVIF.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
# DIB header sizes of the BMP versions Pillow reads; "BM" alone is too weak a signature.
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def _ftyp_brands(data: bytes) -> tuple[bytes, frozenset[bytes]]:
    """Major brand and compatible brands of a leading ftyp box; (b"", {}) when there is none."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return b"", frozenset()
    end = min(int.from_bytes(data[:4], "big"), len(data), 1024)
    return data[8:12], frozenset(data[offset : offset + 4] for offset in range(16, end - 3, 4))


def _is_avif(data: bytes) -> bool:
    major, compatible = _ftyp_brands(data)
    generic_avif = major in _GENERIC_HEIF_BRANDS and compatible & _AVIF_BRANDS and not compatible & _HEIC_BRANDS
    return major in _AVIF_BRANDS or bool(generic_avif)


def _is_heic(data: bytes) -> bool:
    major, compatible = _ftyp_brands(data)
    return major in _HEIC_BRANDS or (major in _GENERIC_HEIF_BRANDS and bool(compatible & _HEIC_BRANDS))


def _is_generic_heif(data: bytes) -> bool:
    return _ftyp_brands(data)[0] in _GENERIC_HEIF_BRANDS and not _is_avif(data) and not _is_heic(data)


def _is_bmp(data: bytes) -> bool:
    return data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES


FORMATS = (
    ImageFormat("JPEG", "image/jpeg", "JPEG", lambda data: data[:3] == b"\xff\xd8\xff"),
    ImageFormat("PNG", "image/png", "PNG", lambda data: data[:8] == b"\x89PNG\r\n\x1a\n"),
    ImageFormat("WebP", "image/webp", "WEBP", lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP"),
    ImageFormat("GIF", "image/gif", "GIF", lambda data: data[:6] in (b"GIF87a", b"GIF89a")),
    ImageFormat("BMP", "image/bmp", "BMP", _is_bmp),
    ImageFormat("TIFF", "image/tiff", "TIFF", lambda data: data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
    ImageFormat("HEIC", "image/heic", "HEIF", _is_heic),
    ImageFormat("HEIF", "image/heif", "HEIF", _is_generic_heif),
    ImageFormat("AVIF", "image/avif", "AVIF", _is_avif),
)
"""Every supported format, tested in this order."""

_TRANSPOSE_OF_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""How each EXIF orientation (1 is upright) is undone."""

SUPPORTED = ", ".join(image_format.name for image_format in FORMATS)


def sniff_format(data: bytes) -> ImageFormat:
    """The format of ``data`` from its leading bytes; UnsupportedFormat when none matches."""
    for image_format in FORMATS:
        if image_format.matches(data):
            return image_format
    raise UnsupportedFormat(f"unsupported image format: the bytes are none of {SUPPORTED}")


def open_upright(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The first frame of an encoded image as upright 8-bit RGB; its ``size`` is the upright size.

    Raises UnsupportedFormat, TooManyPixels (checked from the header, before decoding)
    or UndecodableImage.
    """
    image_format = sniff_format(data)
    if image_format.pillow_format == "HEIF":
        _register_heif_opener()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels is the limit that applies
            image = Image.open(io.BytesIO(data), formats=[image_format.pillow_format])
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise TooManyPixels(f"the image has {width}x{height} pixels; the limit is {max_pixels}")
            image.load()
            # HEIF comes out of libheif already rotated, with its EXIF orientation reset to 1.
            return _as_rgb(_upright(image))
    except Image.DecompressionBombError as error:
        raise TooManyPixels(f"the image exceeds Pillow's pixel limit: {error}") from error
    except (OSError, SyntaxError, EOFError, ValueError) as error:
        if isinstance(error, UnusableImage):
            raise
        raise UndecodableImage(f"undecodable image: the {image_format.name} data cannot be decoded: {error}") from error


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says.

    Only the orientation tag is read: unlike ``ImageOps.exif_transpose``, the rest of
    the EXIF block is never written back, so a corrupt tag elsewhere cannot fail it.
    """
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    method = _TRANSPOSE_OF_ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _as_rgb(image: Image.Image) -> Image.Image:
    """A new 8-bit RGB image of what a viewer sees."""
    if image.mode.startswith("I"):  # 16/32-bit grey: scale to 8 bits, Pillow's convert would clip at 255
        image = Image.fromarray((np.asarray(image).clip(0, 65535) >> 8).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")


@functools.cache
def _register_heif_opener() -> None:
    """Let Pillow open HEIF through pillow-heif; AVIF stays with Pillow's own plugin."""
    from pillow_heif import register_heif_opener

    # Only the primary image is read: skip parsing thumbnails, depth maps and auxiliary images.
    register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
