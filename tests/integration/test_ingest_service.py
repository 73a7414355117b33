"""Ingest against the real servers: a claim left pending by a killed process does not strand the image;
the running service refuses unwanted request bodies without reading them."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image, PngImagePlugin

from captioning_common.kafka import EventProducer
from captioning_common.records import ImageRecords
from captioning_common.storage import ObjectStore
from services.ingest.intake import Intake, Submission
from services.ingest.settings import IngestSettings
from services.ingest.validation import validate_image
from tests.chunked_client import stream_upload
from tests.integration.pipeline_client import end_offsets, read_since


class Killed(BaseException):
    """Stands for SIGKILL while the broker's acknowledgement is awaited: no cleanup runs."""


class DyingProducer:
    def send(self, *args, **kwargs):
        raise Killed()


def _fresh_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("nonce", os.urandom(8).hex())
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 100, 50)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def test_a_retry_after_a_kill_mid_claim_produces_the_image(s3, kafka) -> None:
    records = ImageRecords(ObjectStore(s3))
    data = _fresh_png()
    image = validate_image(data, IngestSettings())
    start = end_offsets(kafka, "images.uploaded")
    with pytest.raises(Killed):
        Intake(records, DyingProducer()).accept(data, image, Submission(("en",), "killed"))
    assert records.get(image.image_id, "received")["state"] == "pending"

    producer = EventProducer(kafka, source="test-ingest")
    try:
        received, started = Intake(records, producer).accept(data, image, Submission(("en",), "retry"))
    finally:
        producer.close()
    assert started and received["state"] == "queued"
    assert records.get(image.image_id, "received")["state"] == "queued"
    produced = [event for key, event in read_since(kafka, "images.uploaded", start) if key == image.image_id]
    assert len(produced) == 1 and produced[0].image_id == image.image_id and list(produced[0].languages) == ["en"]


def test_the_service_answers_unwanted_chunked_bodies_before_reading_them(pipeline) -> None:
    port = int(pipeline.env["CAPTIONING_INGEST_PORT"])
    total = 50 * 1024 * 1024
    answer, sent = stream_upload(port, {}, total)
    assert answer.startswith(b"HTTP/1.1 401") and b'"unauthorized"' in answer, answer[:300]
    assert sent < total // 4
    answer, sent = stream_upload(port, pipeline.headers, 4 * total)  # over the 20 MB default cap
    assert answer.startswith(b"HTTP/1.1 413") and b'"file_too_large"' in answer, answer[:300]
    assert sent < total
    answer, _ = stream_upload(port, pipeline.reviewer_headers, total)
    assert answer.startswith(b"HTTP/1.1 403") and b'"forbidden"' in answer, answer[:300]
