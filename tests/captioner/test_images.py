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


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_supported_formats_decode_to_the_model_size(fmt: str) -> None:
    pixels = decode_image(encoded(fmt), 96)
    assert pixels.shape == (3, 96, 96) and pixels.dtype.name == "uint8"
    assert pixels[0].mean() > 150 and pixels[1].mean() < 60


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "undecodable image"),
        (b"not an image at all", "undecodable image"),
        (encoded("PNG")[:60], "undecodable image"),
        (encoded("GIF"), "unsupported image format GIF"),
    ],
)
def test_bad_bytes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_image(data, 96)


def test_too_many_pixels_are_refused_before_decoding() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        decode_image(encoded("PNG", (400, 300)), 96, max_pixels=100_000)
