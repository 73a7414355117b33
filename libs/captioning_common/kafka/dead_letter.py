"""Dead-letter records: a message a stage gave up on, with its cause, ready for replay."""

from __future__ import annotations

from confluent_kafka import Message
from google.protobuf.timestamp_pb2 import Timestamp

from captioning_common.events.envelope import EnvelopeError, EventEnvelope
from captioning_common.kafka.topics import dead_letter_topic
from captioning_events.v1.dead_letter_pb2 import DeadLetter


def dead_letter_for(record: Message, stage: str, error_code: str, error_message: str, attempts: int = 1) -> DeadLetter:
    """Wrap a consumed record and the reason it failed into a DeadLetter event."""
    headers = {}
    for key, value in record.headers() or []:
        headers[key] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    try:
        image_id = EventEnvelope.from_headers(record.headers()).subject or ""
    except EnvelopeError:
        image_id = ""
    failed_at = Timestamp()
    failed_at.GetCurrentTime()
    key = record.key()
    return DeadLetter(
        stage=stage,
        source_topic=record.topic(),
        source_partition=record.partition(),
        source_offset=record.offset(),
        original_key=key.encode() if isinstance(key, str) else (key or b""),
        original_value=record.value() or b"",
        original_headers=headers,
        error_code=error_code,
        error_message=error_message,
        attempts=attempts,
        failed_at=failed_at,
        image_id=image_id,
    )


def dead_letter_topic_of(record: Message) -> str:
    """The dead-letter topic for a record consumed from its topic."""
    return dead_letter_topic(record.topic())
