"""Shared image opening: every supported format, first frames, EXIF orientation, limits, refusals."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from captioning_common.images import (
    FORMATS,
    TooManyPixels,
    UndecodableImage,
    UnsupportedFormat,
    open_upright,
    sniff_format,
)

WIDTH, HEIGHT = 96, 64
# One colour per quadrant (top-left, top-right, bottom-left, bottom-right) of a landscape
# image: each of the eight EXIF orientations turns it into a different picture.
QUADRANT_COLOURS = np.array([[[220, 20, 20], [20, 200, 20]], [[20, 20, 220], [240, 240, 240]]], dtype=np.uint8)
TOLERANCE = 24  # lossy codecs shift flat colours a little; a wrong quadrant is off by ~200


def pattern() -> np.ndarray:
    """HEIGHT x WIDTH x 3 quadrants; quadrant sides are multiples of 16 so chroma subsampling stays inside them."""
    return QUADRANT_COLOURS.repeat(HEIGHT // 2, axis=0).repeat(WIDTH // 2, axis=1)


def quadrant_means(image: Image.Image) -> np.ndarray:
    array = np.asarray(image, dtype=np.float32)
    half_h, half_w = array.shape[0] // 2, array.shape[1] // 2
    return np.array(
        [[array[r * half_h : (r + 1) * half_h, c * half_w : (c + 1) * half_w].mean(axis=(0, 1)) for c in (0, 1)] for r in (0, 1)]
    )


def assert_shows_pattern(image: Image.Image) -> None:
    assert image.mode == "RGB" and image.size == (WIDTH, HEIGHT)
    assert np.abs(quadrant_means(image) - QUADRANT_COLOURS).max() < TOLERANCE


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    if fmt == "HEIF":  # written by pillow-heif directly, so the HEIF opener is not registered by the test
        heif = pillow_heif.from_pillow(image)
        for frame in options.pop("append_images", []):
            heif.add_from_pillow(frame)
        heif.save(buffer, **options)
    else:
        image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


HIGH_QUALITY = {"quality": 95}
SAVED = [
    ("JPEG", HIGH_QUALITY, "image/jpeg"),
    ("PNG", {}, "image/png"),
    ("WEBP", {"lossless": True}, "image/webp"),
    ("GIF", {}, "image/gif"),
    ("BMP", {}, "image/bmp"),
    ("TIFF", {}, "image/tiff"),
    ("AVIF", {"quality": 90}, "image/avif"),
    ("HEIF", {"quality": 90}, "image/heic"),
]


@pytest.mark.parametrize(("fmt", "options", "mime"), SAVED)
def test_every_format_is_sniffed_and_opened(fmt: str, options: dict, mime: str) -> None:
    data = encoded(Image.fromarray(pattern()), fmt, **options)
    assert sniff_format(data).mime_type == mime
    assert_shows_pattern(open_upright(data, WIDTH * HEIGHT))


def test_the_table_names_each_mime_type_once() -> None:
    assert len({image_format.mime_type for image_format in FORMATS}) == len(FORMATS)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + bytes(4) + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + bytes(16)


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (ftyp(b"heic", b"mif1", b"heic"), "HEIC"),
        (ftyp(b"mif1", b"mif1", b"heic"), "HEIC"),
        (ftyp(b"hevc", b"msf1", b"hevc"), "HEIC"),
        (ftyp(b"mif1", b"mif1", b"miaf"), "HEIF"),
        (ftyp(b"msf1", b"msf1"), "HEIF"),
        (ftyp(b"avif", b"avif", b"mif1", b"miaf"), "AVIF"),
        (ftyp(b"mif1", b"mif1", b"avif", b"miaf"), "AVIF"),
        (ftyp(b"avis", b"avis", b"msf1"), "AVIF"),
    ],
)
def test_heif_and_avif_are_told_apart_by_their_brands(head: bytes, name: str) -> None:
    assert sniff_format(head).name == name


def frames(fmt: str, **options) -> bytes:
    first, *rest = (Image.fromarray(np.full((HEIGHT, WIDTH, 3), colour, np.uint8)) for colour in ((220, 20, 20), (20, 200, 20), (20, 20, 220)))
    if fmt == "HEIF":
        return encoded(first, fmt, append_images=rest, **options)
    return encoded(first, fmt, save_all=True, append_images=rest, duration=100, **options)


def frame_count(data: bytes, fmt: str) -> int:
    if fmt == "HEIF":
        return len(pillow_heif.open_heif(data))
    with Image.open(io.BytesIO(data)) as image:
        return image.n_frames


@pytest.mark.parametrize(("fmt", "options"), [("GIF", {}), ("WEBP", {"lossless": True}), ("AVIF", {"quality": 90}), ("HEIF", {"quality": 90})])
def test_animations_and_sequences_give_their_first_frame(fmt: str, options: dict) -> None:
    data = frames(fmt, **options)
    assert frame_count(data, fmt) == 3
    mean = np.asarray(open_upright(data, WIDTH * HEIGHT), dtype=np.float32).mean(axis=(0, 1))
    assert np.abs(mean - (220, 20, 20)).max() < TOLERANCE


# How the stored pixels relate to the upright picture for each EXIF orientation, from the
# tag's definition (where the stored 0th row and 0th column are in the upright picture).
STORED = {
    1: lambda upright: upright,
    2: lambda upright: upright[:, ::-1],  # row 0 at the top, column 0 on the right
    3: lambda upright: upright[::-1, ::-1],  # row 0 at the bottom, column 0 on the right
    4: lambda upright: upright[::-1, :],  # row 0 at the bottom, column 0 on the left
    5: lambda upright: upright.transpose(1, 0, 2),  # row 0 on the left, column 0 at the top
    6: lambda upright: np.rot90(upright, 1),  # row 0 on the right, column 0 at the top
    7: lambda upright: np.rot90(upright, 1)[:, ::-1],  # row 0 on the right, column 0 at the bottom
    8: lambda upright: np.rot90(upright, -1),  # row 0 on the left, column 0 at the bottom
}


def stored_with_orientation(orientation: int, fmt: str, **options) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](pattern())))
    return encoded(stored, fmt, exif=exif.tobytes(), **options)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_of_a_jpeg_comes_back_upright(orientation: int) -> None:
    assert_shows_pattern(open_upright(stored_with_orientation(orientation, "JPEG", **HIGH_QUALITY), WIDTH * HEIGHT))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heif_and_avif_orientation_is_applied_exactly_once(fmt: str, orientation: int) -> None:
    data = stored_with_orientation(orientation, fmt, quality=90)
    assert_shows_pattern(open_upright(data, WIDTH * HEIGHT))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose pixel data is garbage."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"garbage, not deflate") + png_chunk(b"IEND", b"")


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose screen and first frame claim ``width`` x ``height`` and whose pixel data is garbage."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return screen + frame + b"\x08" + b"\x05garbg" + b"\x00;"


@pytest.mark.parametrize("data", [png_claiming(100_000, 100_000), gif_claiming(65_535, 65_535)])
def test_headers_beyond_pillows_own_bomb_limit_are_too_many_pixels(data: bytes) -> None:
    with pytest.raises(TooManyPixels, match="pixel limit"):
        open_upright(data, 10**12)


@pytest.mark.parametrize("data", [png_claiming(5_000, 5_000), gif_claiming(2_000, 1_000)])
def test_too_many_pixels_are_refused_from_the_header_before_decoding(data: bytes) -> None:
    with pytest.raises(TooManyPixels, match="the limit is 1000000"):
        open_upright(data, 1_000_000)
    # Under a higher limit the same file is decoded, and its garbage pixel data fails.
    with pytest.raises(UndecodableImage):
        open_upright(data, 40_000_000)


def test_the_pixel_limit_is_inclusive() -> None:
    data = encoded(Image.fromarray(pattern()), "PNG")
    assert open_upright(data, WIDTH * HEIGHT).size == (WIDTH, HEIGHT)
    with pytest.raises(TooManyPixels, match=f"{WIDTH}x{HEIGHT}"):
        open_upright(data, WIDTH * HEIGHT - 1)


@pytest.mark.parametrize(("fmt", "options", "mime"), SAVED)
def test_truncated_files_are_undecodable(fmt: str, options: dict, mime: str) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), fmt, **options)
    with pytest.raises(UndecodableImage, match="undecodable image"):
        open_upright(data[: len(data) // 2], WIDTH * HEIGHT)


@pytest.mark.parametrize("fmt", ["ICO", "JPEG2000", "PDF", "TGA", "PPM", "QOI"])
def test_formats_pillow_reads_but_we_do_not_support_are_refused(fmt: str) -> None:
    data = encoded(Image.fromarray(pattern()), fmt)
    with pytest.raises(UnsupportedFormat, match="JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, HEIF, AVIF"):
        sniff_format(data)
    with pytest.raises(UnsupportedFormat):
        open_upright(data, WIDTH * HEIGHT)


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"BM" + bytes(40), ftyp(b"isom", b"isom", b"mp41")],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedFormat):
        open_upright(data, WIDTH * HEIGHT)


def test_every_mode_ends_as_what_a_viewer_sees() -> None:
    grey16 = Image.fromarray(np.full((HEIGHT, WIDTH), 0x8000, np.uint16))
    assert open_upright(encoded(grey16, "PNG"), WIDTH * HEIGHT).getpixel((0, 0)) == (128, 128, 128)
    transparent = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    for fmt in ("PNG", "WEBP", "GIF", "AVIF"):
        assert open_upright(encoded(transparent, fmt), WIDTH * HEIGHT).getpixel((0, 0)) == (255, 255, 255), fmt
    cmyk = Image.fromarray(pattern()).convert("CMYK")
    assert_shows_pattern(open_upright(encoded(cmyk, "JPEG", **HIGH_QUALITY), WIDTH * HEIGHT))
    palette = Image.fromarray(pattern()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert_shows_pattern(open_upright(encoded(palette, "BMP"), WIDTH * HEIGHT))


def test_heif_support_is_registered_only_when_needed_and_leaves_avif_to_pillow() -> None:
    probe = "import sys, PIL.Image, captioning_common.images; print('pillow_heif' in sys.modules, 'HEIF' in PIL.Image.OPEN)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
    open_upright(encoded(Image.fromarray(pattern()), "HEIF"), WIDTH * HEIGHT)
    Image.init()
    assert Image.OPEN["HEIF"][0].__module__.startswith("pillow_heif")
    assert Image.OPEN["AVIF"][0].__module__ == "PIL.AvifImagePlugin"
    with Image.open(io.BytesIO(encoded(Image.fromarray(pattern()), "AVIF"))) as avif:
        assert avif.format == "AVIF"
