"""The CloudEvents `type` of every event and the protobuf message that carries it."""

from __future__ import annotations

from google.protobuf.message import Message

try:
    from captioning_events.v1 import caption_pb2, dead_letter_pb2, image_pb2, index_pb2, moderation_pb2
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError("event schemas are not generated: run `make protos`") from exc

SCHEMA_VERSION = "v1"

EVENT_TYPES: dict[type[Message], str] = {
    image_pb2.ImageSubmitted: "io.captioning.image.submitted",
    image_pb2.ImageUploaded: "io.captioning.image.uploaded",
    caption_pb2.CaptionGenerated: "io.captioning.caption.generated",
    moderation_pb2.ModerationVerdict: "io.captioning.moderation.verdict",
    moderation_pb2.ReviewDecision: "io.captioning.moderation.review_decision",
    index_pb2.IndexUpdated: "io.captioning.index.updated",
    dead_letter_pb2.DeadLetter: "io.captioning.dead_letter",
}

_BY_TYPE = {event_type: cls for cls, event_type in EVENT_TYPES.items()}

SCHEMA_MODULES = (caption_pb2, dead_letter_pb2, image_pb2, index_pb2, moderation_pb2)


def message_class_for(event_type: str) -> type[Message]:
    """The protobuf class of a CloudEvents type; KeyError for an unknown type."""
    return _BY_TYPE[event_type]


def event_type_of(message: Message) -> str:
    """The CloudEvents type of a protobuf event; KeyError for a message that is no event."""
    return EVENT_TYPES[type(message)]
