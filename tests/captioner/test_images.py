"""Image decoding: formats sniffed from bytes, clear errors for everything else."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from captioner.images import decode_image


def encoded(fmt: str, size=(120, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF"])
def test_supported_formats_decode_to_the_model_size(fmt: str) -> None:
    pixels = decode_image(encoded(fmt), 96)
    assert pixels.shape == (3, 96, 96) and pixels.dtype.name == "uint8"
    assert pixels[0].mean() > 150 and pixels[1].mean() < 60


def test_the_exif_orientation_is_applied_before_resizing() -> None:
    stored = Image.new("RGB", (120, 80), (200, 10, 10))
    stored.paste((10, 10, 200), (0, 0, 120, 40))  # blue top half as stored
    exif = Image.Exif()
    exif[0x0112] = 8  # displayed after a quarter turn anticlockwise: the blue half ends up on the left
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    pixels = decode_image(buffer.getvalue(), 96).astype(int)
    left, right = pixels[:, :, :40].mean(axis=(1, 2)), pixels[:, :, 56:].mean(axis=(1, 2))
    assert left[2] > 150 and left[0] < 60, left  # blue
    assert right[0] > 150 and right[2] < 60, right  # red


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unsupported image format"),
        (b"not an image at all", "unsupported image format"),
        (encoded("ICO"), "unsupported image format"),
        (encoded("PNG")[:60], "undecodable image"),
        (encoded("WEBP")[:40], "undecodable image"),
    ],
)
def test_bad_bytes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_image(data, 96)


def test_too_many_pixels_are_refused_before_decoding() -> None:
    with pytest.raises(ValueError, match="the limit is 100000"):
        decode_image(encoded("PNG", (400, 300)), 96, max_pixels=100_000)
