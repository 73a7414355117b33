"""Dead-letter records: a message a stage gave up on, with its cause, ready for replay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from confluent_kafka import Message
from google.protobuf.timestamp_pb2 import Timestamp

from captioning_common.events.envelope import EnvelopeError, EventEnvelope
from captioning_common.kafka.topics import dead_letter_topic
from captioning_events.v1.common_pb2 import ObjectRef
from captioning_events.v1.dead_letter_pb2 import DeadLetter

if TYPE_CHECKING:
    from captioning_common.storage import ObjectStore

# Room a letter leaves within the record limit for its record's key, headers and batch framing.
RECORD_FRAMING_BYTES = 16 * 1024
# An error message of an oversized letter keeps at most this many bytes.
MAX_ERROR_MESSAGE_BYTES = 4096


def dead_letter_for(message: Message, stage: str, error_code: str, error_message: str, attempts: int = 1) -> DeadLetter:
    """Wrap a consumed message and the reason it failed into a DeadLetter event."""
    headers = {}
    for key, value in message.headers() or []:
        headers[key] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    try:
        image_id = EventEnvelope.from_headers(message.headers()).subject or ""
    except EnvelopeError:
        image_id = ""
    failed_at = Timestamp()
    failed_at.GetCurrentTime()
    key = message.key()
    return DeadLetter(
        stage=stage,
        source_topic=message.topic(),
        source_partition=message.partition(),
        source_offset=message.offset(),
        original_key=key.encode() if isinstance(key, str) else (key or b""),
        original_value=message.value() or b"",
        original_headers=headers,
        error_code=error_code,
        error_message=error_message,
        attempts=attempts,
        failed_at=failed_at,
        image_id=image_id,
    )


def dead_letter_topic_of(message: Message) -> str:
    """The dead-letter topic for a message consumed from its topic."""
    return dead_letter_topic(message.topic())


def dead_letter_object_key(source_topic: str, partition: int, offset: int) -> str:
    """Key of the object that holds the original value of an oversized dead letter."""
    return f"dead-letters/{source_topic}/{partition}-{offset}"


def fit_dead_letter(letter: DeadLetter, store: ObjectStore, limit: int) -> DeadLetter:
    """``letter`` shrunk to fit a record of at most ``limit`` bytes (the brokers' limit), or itself when it fits.

    In order, until it fits: the original value moves to the store (``original_object``,
    nothing is lost; replay reads it back), the error message is truncated, and, as a
    last resort, the original headers, then the original key, are dropped (noted in the
    error message).
    """
    if _fits(letter, limit):
        return letter
    fitted = DeadLetter()
    fitted.CopyFrom(letter)
    if fitted.original_value:
        key = dead_letter_object_key(fitted.source_topic, fitted.source_partition, fitted.source_offset)
        store.put(key, fitted.original_value)
        fitted.original_object.CopyFrom(ObjectRef(bucket=store.bucket, key=key))
        fitted.original_value = b""
    message = fitted.error_message.encode()
    if not _fits(fitted, limit) and len(message) > MAX_ERROR_MESSAGE_BYTES:
        kept = message[:MAX_ERROR_MESSAGE_BYTES].decode(errors="ignore")
        fitted.error_message = f"{kept} ... (truncated from {len(message)} bytes)"
    if not _fits(fitted, limit) and fitted.original_headers:
        dropped = sum(len(k.encode()) + len(v.encode()) for k, v in fitted.original_headers.items())
        fitted.original_headers.clear()
        fitted.error_message += f"; original headers dropped ({dropped} bytes)"
    if not _fits(fitted, limit):
        fitted.error_message += f"; original key dropped ({len(fitted.original_key)} bytes)"
        fitted.original_key = b""
    return fitted


def _fits(letter: DeadLetter, limit: int) -> bool:
    # The letter's record also carries the original key as its key, headers and framing.
    return letter.ByteSize() + len(letter.original_key) + RECORD_FRAMING_BYTES <= limit
