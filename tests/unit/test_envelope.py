"""CloudEvents envelope: attributes in headers, clear errors on malformed records."""

from __future__ import annotations

import pytest

from captioning_common.events import EnvelopeError, EventEnvelope, decode_event, encode_event
from captioning_events.v1.image_pb2 import ImageUploaded


def test_headers_follow_the_kafka_binding() -> None:
    headers, value = encode_event(ImageUploaded(image_id="abc"), source="ingest", subject="abc")
    names = dict(headers)
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_type"] == b"io.captioning.image.uploaded"
    assert names["ce_source"] == b"ingest"
    assert names["ce_subject"] == b"abc"
    assert names["ce_schemaversion"] == b"v1"
    assert names["ce_dataschema"] == b"urn:captioning:proto:captioning_events.v1.ImageUploaded"
    assert names["content-type"] == b"application/protobuf"
    assert len(names["ce_id"]) == 36
    envelope = EventEnvelope.from_headers(headers)
    assert envelope.time.tzinfo is not None


def test_each_event_gets_its_own_id() -> None:
    first, _ = encode_event(ImageUploaded(), source="s")
    second, _ = encode_event(ImageUploaded(), source="s")
    assert dict(first)["ce_id"] != dict(second)["ce_id"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: [x for x in h if x[0] != "ce_type"], "missing CloudEvents headers: ce_type"),
        (lambda h: [x for x in h if x[0] not in ("ce_id", "ce_source")], "missing CloudEvents headers: ce_id, ce_source"),
        (lambda h: [(k, b"0.3" if k == "ce_specversion" else v) for k, v in h], "unsupported CloudEvents specversion"),
        (lambda h: [(k, b"io.other.thing" if k == "ce_type" else v) for k, v in h], "unknown event type 'io.other.thing'"),
        (lambda h: [(k, b"yesterday" if k == "ce_time" else v) for k, v in h], "ce_time is not RFC 3339"),
        (lambda h: [(k, b"application/json" if k == "content-type" else v) for k, v in h], "unsupported content-type"),
        (lambda h: [(k, b"\xff\xfe" if k == "ce_source" else v) for k, v in h], "header 'ce_source' is not UTF-8"),
        (lambda h: None, "missing CloudEvents headers"),
    ],
)
def test_malformed_envelopes_are_rejected_with_the_reason(mutate, message: str) -> None:
    headers, value = encode_event(ImageUploaded(image_id="abc"), source="ingest")
    with pytest.raises(EnvelopeError, match=message):
        decode_event(mutate(headers), value)


def test_garbage_payload_is_rejected() -> None:
    headers, _ = encode_event(ImageUploaded(image_id="abc"), source="ingest")
    with pytest.raises(EnvelopeError, match="payload is not a valid captioning_events.v1.ImageUploaded"):
        decode_event(headers, b"\xff\xff\xff\xff")
