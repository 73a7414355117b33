"""Event schemas (generated from protos/) and their CloudEvents envelope."""

from captioning_common.events.envelope import (
    EnvelopeError,
    EventEnvelope,
    decode_event,
    encode_event,
)
from captioning_common.events.registry import EVENT_TYPES, message_class_for

__all__ = [
    "EVENT_TYPES",
    "EnvelopeError",
    "EventEnvelope",
    "decode_event",
    "encode_event",
    "message_class_for",
]
