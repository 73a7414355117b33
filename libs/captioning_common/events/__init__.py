"""Event schemas (generated from protos/) and their CloudEvents envelope."""

from captioning_common.events.envelope import (
    EnvelopeError,
    EventEnvelope,
    decode_event,
    encode_event,
)
from captioning_common.events.registry import EVENT_TYPES, message_class_for
from captioning_common.events.codec import (
    caption_to_dict,
    copy_findings,
    decode_expected,
    findings_to_dict,
    iso,
    set_findings,
    timestamp_from_iso,
    timestamp_now,
)

__all__ = [
    "EVENT_TYPES",
    "caption_to_dict",
    "copy_findings",
    "decode_expected",
    "findings_to_dict",
    "iso",
    "set_findings",
    "timestamp_from_iso",
    "timestamp_now",
    "EnvelopeError",
    "EventEnvelope",
    "decode_event",
    "encode_event",
    "message_class_for",
]
