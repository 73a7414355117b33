"""Ingest logic that needs no server: validation, request fields, the status view."""

from __future__ import annotations

import hashlib
import io

import pillow_heif
import pytest
from PIL import Image

from captioning_common.records import status_of
from services.ingest.image_status import image_view
from services.ingest.intake import InvalidRequest, check_metadata, parse_languages
from services.ingest.settings import IngestSettings
from services.ingest.validation import ImageRejected, validate_image

SETTINGS = IngestSettings(max_bytes=1_000_000, max_pixels=1_000_000, min_side=8)


def _encoded(fmt: str, size=(40, 30), mode="RGB", **options) -> bytes:
    image = Image.new(mode, size, 128)
    buffer = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.from_pillow(image).save(buffer, **options)
    else:
        image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40x30, displayed rotated a quarter turn
    return _encoded("JPEG", exif=exif.tobytes())


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        ("AVIF", "image/avif"),
        ("HEIF", "image/heic"),
    ],
)
def test_accepted_formats_are_sniffed_from_the_bytes(fmt: str, mime: str) -> None:
    data = _encoded(fmt)
    image = validate_image(data, SETTINGS)
    assert (image.content_type, image.width, image.height, image.size_bytes) == (mime, 40, 30, len(data))
    assert image.image_id == hashlib.sha256(data).hexdigest()


def test_width_and_height_are_those_of_the_upright_image() -> None:
    image = validate_image(_rotated_jpeg(), SETTINGS)
    assert (image.content_type, image.width, image.height) == ("image/jpeg", 30, 40)


def _truncated(fmt: str) -> bytes:
    noise = Image.frombytes("RGB", (40, 30), bytes(i * 37 % 251 for i in range(40 * 30 * 3)))  # no long runs to compress
    buffer = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.from_pillow(noise).save(buffer)
    else:
        noise.save(buffer, format=fmt)
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"", "empty_file", 400),
        (_encoded("ICO"), "unsupported_format", 415),
        (_encoded("JPEG2000"), "unsupported_format", 415),
        (b"%PDF-1.7 not an image", "unsupported_format", 415),
        (b"<svg xmlns='http://www.w3.org/2000/svg' width='40' height='30'/>", "unsupported_format", 415),
        (_encoded("PNG")[:60], "corrupt_image", 422),
        (b"\xff\xd8\xff\xe0" + bytes(300), "corrupt_image", 422),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 garbage", "corrupt_image", 422),
        (_truncated("GIF"), "corrupt_image", 422),
        (_truncated("BMP"), "corrupt_image", 422),
        (_truncated("TIFF"), "corrupt_image", 422),
        (_truncated("AVIF"), "corrupt_image", 422),
        (_truncated("HEIF"), "corrupt_image", 422),
        (_encoded("PNG", (4, 100)), "image_too_small", 422),
        (_encoded("GIF", (100, 4)), "image_too_small", 422),
        (_encoded("PNG", (2000, 1000), "1"), "too_many_pixels", 413),
        (_encoded("TIFF", (2000, 1000), "1"), "too_many_pixels", 413),
        (_encoded("HEIF", (1200, 1000)), "too_many_pixels", 413),
        (b"\x89PNG\r\n\x1a\n" + bytes(1_000_001), "file_too_large", 413),
    ],
)
def test_rejections_carry_a_code_and_an_http_status(data: bytes, code: str, status: int) -> None:
    with pytest.raises(ImageRejected) as caught:
        validate_image(data, SETTINGS)
    assert (caught.value.code, caught.value.http_status) == (code, status)
    assert caught.value.message


def test_the_declared_type_is_never_trusted() -> None:
    # Only the bytes are passed in: a GIF is a GIF whatever its name or declared type.
    assert validate_image(_encoded("GIF"), SETTINGS).content_type == "image/gif"
    with pytest.raises(ImageRejected, match="checked from its bytes"):
        validate_image(b"GIF not really" + bytes(20), SETTINGS)


def test_languages_default_to_both_and_accept_repeats_and_commas() -> None:
    assert parse_languages([]) == ("en", "ko")
    assert parse_languages(["ko"]) == ("ko",)
    assert parse_languages(["en, ko", "EN"]) == ("en", "ko")
    with pytest.raises(InvalidRequest, match="'fr'"):
        parse_languages(["en,fr"])


def test_metadata_must_be_a_small_map_of_strings() -> None:
    check_metadata({"album": "summer"}, "ref-1")
    for metadata in ([], {"n": 1}, {str(i): "x" for i in range(33)}, {"k": "v" * 1025}):
        with pytest.raises(InvalidRequest):
            check_metadata(metadata, "")
    with pytest.raises(InvalidRequest):
        check_metadata({}, "r" * 257)


def test_status_follows_the_furthest_stage_and_failure_wins() -> None:
    assert status_of({"received": {}}) == "received"
    assert status_of({"received": {}, "captions": {}, "moderation": {}}) == "moderated"
    assert status_of({"received": {}, "captions": {}, "moderation": {}, "index": {}}) == "indexed"
    assert status_of({"received": {}, "failure": {}}) == "failed"


def test_the_view_shows_released_captions_keywords_and_verdict() -> None:
    caption = {"language": "en", "text": "a person holding a cup", "keywords": ["cup"], "hashtags": ["#cup"], "score": 0.8}
    records = {
        "received": {"received_at": "t0", "content_type": "image/png", "width": 8, "height": 8, "size_bytes": 10,
                     "languages": ["en"], "client_ref": "r", "metadata": {}},
        "captions": {"captions": [dict(caption, text="a young woman holding a cup")], "model": {"name": "captioner", "version": "1"}, "generated_at": "t1"},
        "moderation": {"verdict": "approve", "reasons": [{"code": "caption.sensitive_attribute", "detail": "neutralised", "score": 1.0}],
                       "captions": [caption], "moderated_at": "t2", "reviewer": ""},
    }
    view = image_view("abc", records)
    assert view["status"] == "moderated" and view["verdict"] == "approve"
    assert view["captions"]["en"]["text"] == "a person holding a cup"  # as released, not as generated
    assert view["keywords"] == ["cup"] and view["hashtags"] == ["#cup"]
    assert "failure" not in view and "reviewer" not in view
