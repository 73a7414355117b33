"""Event schemas: every event round-trips; the compatibility check catches breaking changes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from captioning_common.events import EVENT_TYPES, decode_event, encode_event
from captioning_common.events.compat import DEFAULT_LOCK, breaking_changes, snapshot_of
from captioning_common.events.registry import SCHEMA_MODULES
from captioning_events.v1 import common_pb2
from tests.conftest import REPO_ROOT

MODULES = (common_pb2, *SCHEMA_MODULES)
SCALARS = {
    FieldDescriptor.TYPE_STRING: "text-é-한",
    FieldDescriptor.TYPE_BYTES: b"\x00\xffbytes",
    FieldDescriptor.TYPE_INT32: -7,
    FieldDescriptor.TYPE_INT64: 1 << 40,
    FieldDescriptor.TYPE_FLOAT: 0.5,
    FieldDescriptor.TYPE_DOUBLE: 12.25,
    FieldDescriptor.TYPE_BOOL: True,
}


def populate(message: Message) -> Message:
    """Set every field of ``message`` (recursively) to a non-default value."""
    for field in message.DESCRIPTOR.fields:
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == FieldDescriptor.LABEL_REPEATED
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(message, field.name).update({"k1": "v1", "k2": "v2"})
        elif field.message_type is not None:
            target = getattr(message, field.name).add() if repeated else getattr(message, field.name)
            populate(target)
        elif field.enum_type is not None:
            value = field.enum_type.values[-1].number
            getattr(message, field.name).append(value) if repeated else setattr(message, field.name, value)
        else:
            value = SCALARS[field.type]
            getattr(message, field.name).append(value) if repeated else setattr(message, field.name, value)
    return message


@pytest.mark.parametrize("event_class", list(EVENT_TYPES), ids=lambda c: c.DESCRIPTOR.name)
def test_every_event_round_trips_through_its_envelope(event_class: type[Message]) -> None:
    event = populate(event_class())
    assert event.ByteSize() > 0
    headers, value = encode_event(event, source="tests", subject="img-1")
    envelope, decoded = decode_event(headers, value)
    assert decoded == event
    assert envelope.type == EVENT_TYPES[event_class]
    assert envelope.subject == "img-1"
    assert envelope.dataschema.endswith(event_class.DESCRIPTOR.full_name)


def test_published_lock_records_the_current_schemas() -> None:
    published = json.loads((REPO_ROOT / DEFAULT_LOCK).read_text())
    current = snapshot_of(MODULES)
    assert breaking_changes(published, current) == []
    assert current == published, "schemas gained fields that are not recorded: run `make proto-lock`"


def mutated_snapshot(mutate) -> dict:
    """Snapshot of the schemas after ``mutate`` edited their FileDescriptorProtos by name."""
    files = {}
    for module in (timestamp_pb2, *MODULES):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        files[proto.name] = proto
    mutate({name.rsplit("/", 1)[-1]: proto for name, proto in files.items()})
    pool = descriptor_pool.DescriptorPool()
    order = ["google/protobuf/timestamp.proto", "captioning_events/v1/common.proto", "captioning_events/v1/caption.proto"]
    for name in order + [n for n in files if n not in order]:
        pool.Add(files[name])
    return snapshot_of(SimpleNamespace(DESCRIPTOR=pool.FindFileByName(name)) for name in files if "captioning" in name)


def field_of(files: dict, file: str, message: str, field: str) -> descriptor_pb2.FieldDescriptorProto:
    (msg,) = [m for m in files[file].message_type if m.name == message]
    (fld,) = [f for f in msg.field if f.name == field]
    return fld


def remove_field(files: dict, file: str, message: str, field: str, reserve: bool) -> None:
    (msg,) = [m for m in files[file].message_type if m.name == message]
    (fld,) = [f for f in msg.field if f.name == field]
    msg.field.remove(fld)
    if reserve:
        msg.reserved_range.add(start=fld.number, end=fld.number + 1)
        msg.reserved_name.append(field)


PUBLISHED = snapshot_of(MODULES)


def test_unchanged_schemas_are_compatible() -> None:
    assert breaking_changes(PUBLISHED, mutated_snapshot(lambda files: None)) == []


def test_changed_field_type_is_breaking() -> None:
    def mutate(files):
        field_of(files, "image.proto", "ImageUploaded", "width").type = FieldDescriptor.TYPE_INT64

    assert breaking_changes(PUBLISHED, mutated_snapshot(mutate)) == [
        "captioning_events.v1.ImageUploaded.width: type changed from 'int32' to 'int64'"
    ]


def test_renumbered_field_is_breaking() -> None:
    def mutate(files):
        field_of(files, "caption.proto", "Caption", "text").number = 20

    assert breaking_changes(PUBLISHED, mutated_snapshot(mutate)) == [
        "captioning_events.v1.Caption.text: number changed from 2 to 20"
    ]


def test_field_made_repeated_is_breaking() -> None:
    def mutate(files):
        field_of(files, "dead_letter.proto", "DeadLetter", "error_code").label = FieldDescriptor.LABEL_REPEATED

    assert any("error_code: repeated changed" in p for p in breaking_changes(PUBLISHED, mutated_snapshot(mutate)))


def test_removed_field_must_be_reserved_and_never_reused() -> None:
    unreserved = mutated_snapshot(lambda files: remove_field(files, "image.proto", "ImageUploaded", "client_ref", reserve=False))
    assert breaking_changes(PUBLISHED, unreserved) == [
        "captioning_events.v1.ImageUploaded.client_ref was removed without reserving number 8"
    ]
    reserved = mutated_snapshot(lambda files: remove_field(files, "image.proto", "ImageUploaded", "client_ref", reserve=True))
    assert breaking_changes(PUBLISHED, reserved) == []

    def reuse(files):
        remove_field(files, "image.proto", "ImageUploaded", "client_ref", reserve=False)
        (msg,) = [m for m in files["image.proto"].message_type if m.name == "ImageUploaded"]
        msg.field.add(name="tenant", number=8, type=FieldDescriptor.TYPE_STRING, label=FieldDescriptor.LABEL_OPTIONAL)

    assert "is reused by tenant" in " ".join(breaking_changes(PUBLISHED, mutated_snapshot(reuse)))


def test_added_field_is_compatible() -> None:
    def add(files):
        (msg,) = [m for m in files["image.proto"].message_type if m.name == "ImageUploaded"]
        msg.field.add(name="tenant", number=11, type=FieldDescriptor.TYPE_STRING, label=FieldDescriptor.LABEL_OPTIONAL)

    assert breaking_changes(PUBLISHED, mutated_snapshot(add)) == []


def test_renumbered_enum_value_is_breaking() -> None:
    def mutate(files):
        (enum,) = [e for e in files["moderation.proto"].enum_type if e.name == "Verdict"]
        (value,) = [v for v in enum.value if v.name == "VERDICT_REJECT"]
        value.number = 9

    assert breaking_changes(PUBLISHED, mutated_snapshot(mutate)) == [
        "captioning_events.v1.Verdict.VERDICT_REJECT: number changed from 3 to 9"
    ]
