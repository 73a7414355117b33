"""Talking to the running pipeline for the tests: uploads, status polling, topic reads."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests
from confluent_kafka import Consumer
from PIL import Image, PngImagePlugin

from captioner.render import render
from captioner.scenes import SceneSampler
from captioning_common.kafka import watermarks
from captioning_common.kafka.reading import read_range
from captioning_common.settings import KafkaSettings

FINAL = ("indexed", "failed")
# Images are content-addressed and the local servers keep their data between test
# sessions, so each session marks its images with a salt in their metadata: new bytes
# (new ids), but the same pixels every session, so captions and verdicts are repeatable.
SESSION_SALT = os.urandom(4).hex()
FORMATS = ("PNG", "JPEG", "WEBP")


def salted(image: Image.Image, fmt: str, *, tag: str, quality: int = 92) -> bytes:
    """``image`` encoded as ``fmt`` with this session's salt and ``tag`` in its metadata: new bytes, the same pixels.

    Each caller names its own ``tag``, so two tests never upload the same bytes (and so the same
    id) by chance. BMP has no metadata: its salt goes into one corner pixel.
    """
    salt = f"{SESSION_SALT} {tag}"
    buffer = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("session", salt)
        image.save(buffer, format=fmt, pnginfo=info)
    elif fmt in ("JPEG", "GIF"):
        image.save(buffer, format=fmt, quality=quality, comment=salt.encode())
    elif fmt == "TIFF":
        image.save(buffer, format=fmt, description=salt)
    elif fmt == "BMP":
        pixels = np.asarray(image.convert("RGB")).copy()
        pixels[0, 0] = list(hashlib.sha256(salt.encode()).digest()[:3])
        Image.fromarray(pixels).save(buffer, format=fmt)
    else:  # WEBP, HEIF, AVIF
        if fmt == "HEIF":
            import pillow_heif

            pillow_heif.register_heif_opener()
        exif = Image.Exif()
        exif[0x010E] = f"session {salt}"  # ImageDescription
        image.save(buffer, format=fmt, quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


def scene_images(count: int, seed: int, *, tag: str) -> list[bytes]:
    """``count`` generated scenes (photo, illustration and line art), cycling PNG, JPEG and WebP; salted with ``tag``."""
    sampler = SceneSampler(seed)
    return [salted(render(sampler.sample(), seed * 100_000 + i), FORMATS[i % len(FORMATS)], tag=tag) for i in range(count)]


def upload(pipeline, data: bytes, **form: str) -> requests.Response:
    """POST one image to the ingest API."""
    return requests.post(f"{pipeline.ingest_url}/v1/images", files={"file": ("image", data)}, data=form, headers=pipeline.headers, timeout=60)


def upload_all(pipeline, images: list[bytes], workers: int = 8) -> list[requests.Response]:
    """Upload concurrently; responses in input order."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda data: upload(pipeline, data), images))


def image_status(pipeline, image_id: str) -> dict:
    """``GET /v1/images/{id}`` body (asserting 200)."""
    response = requests.get(f"{pipeline.ingest_url}/v1/images/{image_id}", headers=pipeline.headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(pipeline, image_ids: list[str], done=lambda s: s["status"] in FINAL or s["verdict"] in ("review", "reject"), timeout_s: float = 300) -> dict[str, dict]:
    """Poll until ``done`` holds for every image; returns the last status of each."""
    deadline = time.monotonic() + timeout_s
    remaining = set(image_ids)
    latest: dict[str, dict] = {}
    while remaining:
        with ThreadPoolExecutor(8) as pool:
            for status in pool.map(lambda i: image_status(pipeline, i), sorted(remaining)):
                latest[status["id"]] = status
                if done(status):
                    remaining.discard(status["id"])
        if not remaining:
            break
        if time.monotonic() > deadline:
            stuck = {i: latest[i]["status"] for i in sorted(remaining)[:5]}
            raise AssertionError(f"{len(remaining)} images not done after {timeout_s:.0f}s, e.g. {stuck} (session {SESSION_SALT})")
        time.sleep(0.5)
    return latest


def wait_until_accepted(pipeline, image_id: str, what: str, timeout_s: float = 60) -> None:
    """Poll until the ingest API knows ``image_id`` (a submission from a topic arrives on its own time)."""
    deadline = time.monotonic() + timeout_s
    while requests.get(f"{pipeline.ingest_url}/v1/images/{image_id}", headers=pipeline.headers, timeout=30).status_code == 404:
        assert time.monotonic() < deadline, f"{what} was not accepted"
        time.sleep(0.5)


def review(pipeline, image_id: str, verdict: str, note: str = "", headers: dict[str, str] | None = None) -> requests.Response:
    """``POST /v1/reviews/{id}`` with the session reviewer's key, or with ``headers``."""
    body = {"verdict": verdict, "note": note}
    return requests.post(f"{pipeline.ingest_url}/v1/reviews/{image_id}", json=body, headers=pipeline.reviewer_headers if headers is None else headers, timeout=30)


def search(pipeline, query: str, lang: str = "en", limit: int = 3) -> requests.Response:
    """``GET /v1/search``."""
    return requests.get(f"{pipeline.search_url}/v1/search", params={"q": query, "lang": lang, "limit": limit}, headers=pipeline.headers, timeout=30)


def end_offsets(settings: KafkaSettings, topic: str) -> dict[int, int]:
    """High watermark of each partition of ``topic``."""
    consumer = Consumer(settings.client_config() | {"group.id": f"probe-{uuid.uuid4()}"})
    try:
        return {p: high for p, (_, high) in watermarks(consumer, topic).items()}
    finally:
        consumer.close()


def read_since(settings: KafkaSettings, topic: str, start: dict[int, int], timeout_s: float = 30) -> list:
    """Every record of ``topic`` from ``start`` offsets to the current end, as (key, event);
    a record that is not a valid event comes back as (key, None)."""
    end = end_offsets(settings, topic)
    consumer = Consumer(settings.client_config() | {"group.id": f"probe-{uuid.uuid4()}", "enable.auto.commit": False})
    try:
        starts = {partition: start.get(partition, 0) for partition in end}
        return [((m.key() or b"").decode(errors="replace"), event) for m, event in read_range(consumer, topic, starts, end, idle_timeout_s=timeout_s)]
    finally:
        consumer.close()
