"""Mutated JPEG, PNG, WebP and GIF files for fuzzing the upload validation.

Real files are encoded with Pillow, then broken in ways an attacker or a bad encoder
would: bit flips, truncation, duplicated chunks or markers, corrupted headers and
declared dimensions far beyond the pixel limit. Every mutation is a pure function of
its index and seed, so a failure names a file that can be made again.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

HUGE_SIDES = ((65535, 65535), (100_000, 100_000), (1, 2**31 - 1), (2**31 - 1, 1), (0, 0), (1, 40_000_000), (16384, 16384))


@dataclass(frozen=True)
class Mutant:
    """One mutated file: its index, the base file and the mutation that made it."""

    index: int
    base: str
    mutation: str
    data: bytes

    def __str__(self) -> str:
        return f"#{self.index} {self.mutation} of {self.base} ({len(self.data)} bytes)"


def _pixels(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Smooth gradients with noise: compressible like a photo, yet every byte of the stream matters."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) * 127 // max(width + height - 2, 1)], -1)
    return (base + rng.integers(0, 24, (height, width, 3))).clip(0, 255).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def base_images(seed: int = 0) -> dict[str, bytes]:
    """Valid files of every fuzzed format and many of their variants (modes, EXIF, animation, progressive)."""
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(_pixels(rng, 48, 32))
    frames = [Image.fromarray(_pixels(rng, 40, 24)) for _ in range(3)]
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate, so exif_transpose parses and applies it
    exif[0x010E] = "hostile input"
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(_pixels(rng, 48, 32)[:, :, 0]))
    palette = rgb.quantize(16)
    return {
        "jpeg-baseline": _encode(rgb, "JPEG", quality=85),
        "jpeg-progressive-exif": _encode(rgb, "JPEG", quality=80, progressive=True, exif=exif.tobytes()),
        "jpeg-grey-444": _encode(rgb.convert("L"), "JPEG", quality=90, subsampling=0),
        "jpeg-cmyk": _encode(rgb.convert("CMYK"), "JPEG", quality=90),
        "png-rgb-text": _encode(rgb, "PNG", pnginfo=_png_text()),
        "png-rgba-exif": _encode(rgba, "PNG", exif=exif.tobytes()),
        "png-palette-transparency": _encode(palette, "PNG", transparency=0),
        "png-grey16": _encode(Image.fromarray((_pixels(rng, 24, 16)[:, :, 0].astype(np.uint16) * 257)), "PNG"),
        "png-grey-alpha": _encode(rgba.convert("LA"), "PNG"),
        "webp-lossy-exif": _encode(rgb, "WEBP", quality=80, exif=exif.tobytes()),
        "webp-lossless": _encode(rgba, "WEBP", lossless=True),
        "webp-animated": _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=80, loop=0),
        "gif-static": _encode(palette, "GIF"),
        "gif-animated-transparent": _encode(frames[0].quantize(32), "GIF", save_all=True, append_images=[f.quantize(32) for f in frames[1:]], transparency=0, duration=60),
    }


def _png_text():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "hostile input")
    info.add_itxt("title", "적대적 입력", lang="ko")
    return info


# --- segments of each format: (start, end) byte spans of chunks, markers or blocks -------------


def _png_chunks(data: bytes) -> list[tuple[int, int]]:
    spans, offset = [], 8
    while offset + 12 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        end = offset + 12 + length
        if end > len(data):
            break
        spans.append((offset, end))
        offset = end
    return spans


def _jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    spans, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker in (0xD8, 0xD9) or 0xD0 <= marker <= 0xD7:
            offset += 2
            continue
        end = offset + 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
        if marker == 0xDA:  # start of scan: the entropy-coded data runs to the next non-RST marker
            scan_end = end
            while scan_end + 1 < len(data) and not (data[scan_end] == 0xFF and data[scan_end + 1] not in (0x00, *range(0xD0, 0xD8))):
                scan_end += 1
            end = scan_end
        spans.append((offset, min(end, len(data))))
        offset = end
    return spans


def _riff_chunks(data: bytes) -> list[tuple[int, int]]:
    spans, offset = [], 12
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        end = offset + 8 + size + (size & 1)
        spans.append((offset, min(end, len(data))))
        offset = end
    return spans


def _gif_blocks(data: bytes) -> list[tuple[int, int]]:
    offset = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    spans = []
    while offset < len(data) and data[offset] != 0x3B:
        start = offset
        if data[offset] == 0x21:
            offset += 2
        elif data[offset] == 0x2C:
            flags = data[offset + 9] if offset + 9 < len(data) else 0
            offset += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        else:
            break
        while offset < len(data) and data[offset]:  # data sub-blocks up to the terminator
            offset += data[offset] + 1
        offset += 1
        spans.append((start, min(offset, len(data))))
    return spans


def segments(data: bytes) -> list[tuple[int, int]]:
    """The chunks (PNG, WebP), marker segments (JPEG) or blocks (GIF) of ``data``."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_chunks(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_segments(data)
    if data[:4] == b"RIFF":
        return _riff_chunks(data)
    if data[:3] == b"GIF":
        return _gif_blocks(data)
    return []


# --- declared dimensions --------------------------------------------------------------------


def with_dimensions(data: bytes, width: int, height: int) -> bytes:
    """``data`` with the width and height fields of its header(s) overwritten (clamped to what each field holds)."""
    out = bytearray(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        out[16:24] = struct.pack(">II", width & 0xFFFFFFFF, height & 0xFFFFFFFF)
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))  # a valid CRC, so only the size is wrong
    elif data[:2] == b"\xff\xd8":
        for start, _ in _jpeg_segments(data):
            if data[start + 1] in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                out[start + 5 : start + 9] = struct.pack(">HH", min(height, 0xFFFF), min(width, 0xFFFF))
    elif data[:4] == b"RIFF":
        for start, _ in _riff_chunks(data):
            kind, body = data[start : start + 4], start + 8
            if kind == b"VP8X":
                out[body + 4 : body + 10] = ((max(width, 1) - 1) & 0xFFFFFF).to_bytes(3, "little") + ((max(height, 1) - 1) & 0xFFFFFF).to_bytes(3, "little")
            elif kind == b"VP8L":
                bits = int.from_bytes(data[body + 1 : body + 5], "little") & ~0xFFFFFFF
                bits |= ((max(width, 1) - 1) & 0x3FFF) | (((max(height, 1) - 1) & 0x3FFF) << 14)
                out[body + 1 : body + 5] = bits.to_bytes(4, "little")
            elif kind == b"VP8 ":
                out[body + 6 : body + 10] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
            elif kind == b"ANMF":
                out[body + 6 : body + 12] = ((max(width, 1) - 1) & 0xFFFFFF).to_bytes(3, "little") + ((max(height, 1) - 1) & 0xFFFFFF).to_bytes(3, "little")
    elif data[:3] == b"GIF":
        out[6:10] = struct.pack("<HH", min(width, 0xFFFF), min(height, 0xFFFF))
        for start, _ in _gif_blocks(data):
            if data[start] == 0x2C:
                out[start + 5 : start + 9] = struct.pack("<HH", min(width, 0xFFFF), min(height, 0xFFFF))
    return bytes(out)


# --- mutations --------------------------------------------------------------------------------


def _bit_flips(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        position = rng.randrange(len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.choice((rng.randrange(1, 64), rng.randrange(len(data)), len(data) - rng.randrange(1, 16)))]


def _duplicate_segment(data: bytes, rng: random.Random) -> bytes:
    spans = segments(data) or [(0, len(data))]
    start, end = rng.choice(spans)
    copies = rng.choice((1, 1, 2, 50))
    at = rng.choice((end, start, rng.randrange(start, len(data) + 1)))
    return data[:at] + data[start:end] * copies + data[at:]


def _corrupt_header(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    head = min(len(out), rng.choice((16, 32, 64, 128)))
    for _ in range(rng.randrange(1, 6)):
        out[rng.randrange(2 if rng.random() < 0.7 else 0, head)] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return bytes(out)


def _corrupt_segment_length(data: bytes, rng: random.Random) -> bytes:
    spans = segments(data)
    if not spans:
        return _corrupt_header(data, rng)
    start, _ = rng.choice(spans)
    out = bytearray(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        out[start : start + 4] = rng.choice((0, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 20))).to_bytes(4, "big")
    elif data[:2] == b"\xff\xd8":
        out[start + 2 : start + 4] = rng.choice((0, 1, 2, 0xFFFF, rng.randrange(1 << 16))).to_bytes(2, "big")
    elif data[:4] == b"RIFF":
        out[start + 4 : start + 8] = rng.choice((0, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 20))).to_bytes(4, "little")
    else:
        out[start + 1 :] = bytes([rng.randrange(256)]) + bytes(out[start + 2 :])
    return bytes(out)


def _huge_dimensions(data: bytes, rng: random.Random) -> bytes:
    """One of the classic sizes, or a random one whose area mostly exceeds the default limit."""
    if rng.random() < 0.5:
        return with_dimensions(data, *rng.choice(HUGE_SIDES))
    width = rng.choice((1, rng.randrange(1, 1 << 16), rng.randrange(1 << 16, 1 << 31)))
    height = rng.randrange(min(40_000_000 // width, (1 << 16) - 1), 1 << 16) if width < 40_000_000 else rng.randrange(1, 8)
    return with_dimensions(data, width, height)


def _splice(data: bytes, rng: random.Random) -> bytes:
    """Random bytes inserted, or a span deleted, somewhere after the signature."""
    at = rng.randrange(8, len(data))
    if rng.random() < 0.5:
        return data[:at] + rng.randbytes(rng.randrange(1, 64)) + data[at:]
    return data[:at] + data[at + rng.randrange(1, 64) :]


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "bit-flip": _bit_flips,
    "truncate": _truncate,
    "duplicate-segment": _duplicate_segment,
    "corrupt-header": _corrupt_header,
    "corrupt-segment-length": _corrupt_segment_length,
    "huge-dimensions": _huge_dimensions,
    "splice": _splice,
}


def mutants(count: int, seed: int = 0) -> Iterator[Mutant]:
    """``count`` mutated files cycling through every base file and every mutation."""
    bases = base_images(seed)
    for index in range(count):
        yield _mutate(bases, index, seed)


def mutant(index: int, seed: int = 0) -> Mutant:
    """The mutant ``index`` of ``mutants(..., seed)``, made alone."""
    return _mutate(base_images(seed), index, seed)


def _mutate(bases: dict[str, bytes], index: int, seed: int) -> Mutant:
    names, kinds = sorted(bases), list(MUTATIONS)
    base, mutation = names[index % len(names)], kinds[(index // len(names)) % len(kinds)]
    return Mutant(index, base, mutation, MUTATIONS[mutation](bases[base], random.Random(f"{seed}:{index}")))
