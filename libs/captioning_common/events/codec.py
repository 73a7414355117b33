"""Event helpers shared by the stages: typed decoding, timestamps, and the JSON form of captions."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TypeVar

from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from captioning_common.events.envelope import EnvelopeError, Headers, decode_event
from captioning_events.v1.caption_pb2 import Caption

E = TypeVar("E", bound=Message)


def decode_expected(headers: Headers | None, value: bytes | None, expected: type[E]) -> E:
    """The event of a record, which must be an ``expected`` with an ``image_id`` if it has one; EnvelopeError otherwise."""
    _, event = decode_event(headers, value)
    if not isinstance(event, expected):
        raise EnvelopeError(f"expected a {expected.__name__} event, got {type(event).__name__}")
    if "image_id" in expected.DESCRIPTOR.fields_by_name and not event.image_id:
        raise EnvelopeError(f"{expected.__name__} without an image_id")
    return event


def timestamp_now() -> Timestamp:
    """The current time as a protobuf Timestamp."""
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def timestamp_from_iso(text: str) -> Timestamp:
    """A protobuf Timestamp of an ISO 8601 time."""
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(text))
    return stamp


def iso(stamp: Timestamp) -> str:
    """ISO 8601 (UTC) of a protobuf Timestamp."""
    return stamp.ToDatetime(timezone.utc).isoformat()


def caption_to_dict(caption: Caption) -> dict:
    """The JSON form of a Caption, as records store it."""
    return {
        "language": caption.language,
        "text": caption.text,
        "keywords": list(caption.keywords),
        "hashtags": list(caption.hashtags),
        "score": round(caption.score, 6),
    }


FINDING_LISTS = ("tags", "objects", "text_lines")  # repeated messages; with "route", an event's findings


def findings_to_dict(event: Message) -> dict:
    """The JSON form of an event's tags, objects, text lines and route, as records store them (zeros kept)."""
    data = {
        name: [MessageToDict(item, preserving_proto_field_name=True, always_print_fields_with_no_presence=True) for item in getattr(event, name)]
        for name in FINDING_LISTS
    }
    data["route"] = event.route
    return data


def set_findings(event: E, findings: dict) -> E:
    """``event`` with the tags, objects, text lines and route of a JSON form (absent keys stay empty)."""
    return ParseDict({name: findings[name] for name in (*FINDING_LISTS, "route") if findings.get(name)}, event)


def copy_findings(source: Message, target: E) -> E:
    """``target`` with the tags, objects, text lines and route of ``source``."""
    for name in FINDING_LISTS:
        getattr(target, name).extend(getattr(source, name))
    target.route = source.route
    return target
