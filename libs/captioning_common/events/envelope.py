"""CloudEvents envelope in Kafka headers (binary content mode of the Kafka protocol binding).

Each event's payload is its protobuf encoding; its attributes travel as ``ce_*``
headers plus ``content-type``. ``subject`` carries the image id, which is also
the correlation id in logs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from google.protobuf.message import DecodeError, Message

from captioning_common.events.registry import SCHEMA_VERSION, event_type_of, message_class_for

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/protobuf"
_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type")

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A Kafka record whose headers or payload do not form a valid event."""


@dataclass(frozen=True)
class EventEnvelope:
    """The CloudEvents attributes of one event."""

    type: str
    source: str
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    datacontenttype: str = CONTENT_TYPE
    schemaversion: str = SCHEMA_VERSION

    @property
    def dataschema(self) -> str:
        """URI naming the protobuf message of the payload."""
        return f"urn:captioning:proto:{message_class_for(self.type).DESCRIPTOR.full_name}"

    def to_headers(self) -> Headers:
        """Kafka headers for this envelope."""
        headers = [
            ("ce_specversion", SPEC_VERSION),
            ("ce_id", self.id),
            ("ce_source", self.source),
            ("ce_type", self.type),
            ("ce_time", self.time.isoformat()),
            ("ce_dataschema", self.dataschema),
            ("ce_schemaversion", self.schemaversion),
            ("content-type", self.datacontenttype),
        ]
        if self.subject:
            headers.append(("ce_subject", self.subject))
        return [(key, value.encode()) for key, value in headers]

    @classmethod
    def from_headers(cls, headers: Headers | None) -> EventEnvelope:
        """Parse the envelope of a Kafka record; EnvelopeError when it is missing or malformed."""
        values: dict[str, str] = {}
        for key, raw in headers or []:
            try:
                values[key] = raw.decode() if isinstance(raw, bytes) else str(raw)
            except UnicodeDecodeError as exc:
                raise EnvelopeError(f"header {key!r} is not UTF-8") from exc
        missing = [key for key in _REQUIRED if key not in values]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if values["ce_specversion"] != SPEC_VERSION:
            raise EnvelopeError(f"unsupported CloudEvents specversion {values['ce_specversion']!r}")
        try:
            message_class_for(values["ce_type"])
        except KeyError:
            raise EnvelopeError(f"unknown event type {values['ce_type']!r}") from None
        time_text = values.get("ce_time")
        try:
            time = datetime.fromisoformat(time_text) if time_text else datetime.now(timezone.utc)
        except ValueError as exc:
            raise EnvelopeError(f"ce_time is not RFC 3339: {time_text!r}") from exc
        return cls(
            type=values["ce_type"],
            source=values["ce_source"],
            subject=values.get("ce_subject"),
            id=values["ce_id"],
            time=time,
            datacontenttype=values.get("content-type", CONTENT_TYPE),
            schemaversion=values.get("ce_schemaversion", SCHEMA_VERSION),
        )


def encode_event(message: Message, source: str, subject: str | None = None) -> tuple[Headers, bytes]:
    """Headers and payload of a Kafka record carrying ``message``."""
    envelope = EventEnvelope(type=event_type_of(message), source=source, subject=subject)
    return envelope.to_headers(), message.SerializeToString()


def decode_event(headers: Headers | None, value: bytes | None) -> tuple[EventEnvelope, Message]:
    """Envelope and protobuf message of a Kafka record; EnvelopeError when it is not a valid event."""
    envelope = EventEnvelope.from_headers(headers)
    if envelope.datacontenttype != CONTENT_TYPE:
        raise EnvelopeError(f"unsupported content-type {envelope.datacontenttype!r}")
    message = message_class_for(envelope.type)()
    try:
        message.ParseFromString(value or b"")
    except DecodeError as exc:
        raise EnvelopeError(f"payload is not a valid {message.DESCRIPTOR.full_name}: {exc}") from exc
    return envelope, message
