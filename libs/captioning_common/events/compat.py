"""Compatibility check of the event schemas against the published lock file.

Rule: fields and messages may be added; a published field keeps its number, type
and cardinality forever; a removed field's number must be reserved so it is never
reused; enum values keep their numbers. ``protos/published.lock.json`` records what
has been published. Usage::

    python -m captioning_common.events.compat            # check, exit 1 on a break
    python -m captioning_common.events.compat --write    # check, then record additions
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

DEFAULT_LOCK = Path("protos/published.lock.json")

_TYPE_NAMES = {
    value: name[len("TYPE_") :].lower()
    for name, value in vars(FieldDescriptor).items()
    if name.startswith("TYPE_") and isinstance(value, int)
}


def _field_shape(field: FieldDescriptor) -> dict[str, Any]:
    repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == FieldDescriptor.LABEL_REPEATED
    shape: dict[str, Any] = {"number": field.number, "type": _TYPE_NAMES[field.type], "repeated": repeated}
    if field.message_type is not None:
        shape["type_name"] = field.message_type.full_name
    elif field.enum_type is not None:
        shape["type_name"] = field.enum_type.full_name
    return shape


def _reserved_numbers(descriptor: Descriptor | EnumDescriptor) -> list[int]:
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.DescriptorProto() if isinstance(descriptor, Descriptor) else descriptor_pb2.EnumDescriptorProto()
    descriptor.CopyToProto(proto)
    numbers: list[int] = []
    for reserved in proto.reserved_range:
        end = reserved.end if isinstance(descriptor, Descriptor) else reserved.end + 1  # enum ranges are inclusive
        numbers.extend(range(reserved.start, end))
    return numbers


def _walk(descriptor: Descriptor, snapshot: dict[str, Any]) -> None:
    snapshot["messages"][descriptor.full_name] = {
        "fields": {field.name: _field_shape(field) for field in descriptor.fields},
        "reserved": _reserved_numbers(descriptor),
    }
    for nested in descriptor.nested_types:
        _walk(nested, snapshot)
    for enum in descriptor.enum_types:
        _walk_enum(enum, snapshot)


def _walk_enum(enum: EnumDescriptor, snapshot: dict[str, Any]) -> None:
    snapshot["enums"][enum.full_name] = {
        "values": {value.name: value.number for value in enum.values},
        "reserved": _reserved_numbers(enum),
    }


def snapshot_of(modules: Iterable[Any]) -> dict[str, Any]:
    """Field numbers, types and cardinality of every message and enum in generated ``*_pb2`` modules."""
    snapshot: dict[str, Any] = {"messages": {}, "enums": {}}
    for module in modules:
        file = module.DESCRIPTOR
        for message in file.message_types_by_name.values():
            _walk(message, snapshot)
        for enum in file.enum_types_by_name.values():
            _walk_enum(enum, snapshot)
    snapshot["messages"] = dict(sorted(snapshot["messages"].items()))
    snapshot["enums"] = dict(sorted(snapshot["enums"].items()))
    return snapshot


def breaking_changes(published: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Every way ``current`` breaks readers or writers of ``published``; empty when compatible."""
    problems: list[str] = []
    for name, old in published["messages"].items():
        new = current["messages"].get(name)
        if new is None:
            problems.append(f"message {name} was removed")
            continue
        numbers_in_use = {shape["number"]: field for field, shape in new["fields"].items()}
        for field, old_shape in old["fields"].items():
            new_shape = new["fields"].get(field)
            if new_shape is None:
                if old_shape["number"] not in new["reserved"]:
                    problems.append(f"{name}.{field} was removed without reserving number {old_shape['number']}")
                if old_shape["number"] in numbers_in_use:
                    problems.append(
                        f"{name}: number {old_shape['number']} of removed field {field} "
                        f"is reused by {numbers_in_use[old_shape['number']]}"
                    )
                continue
            for aspect in ("number", "type", "type_name", "repeated"):
                if old_shape.get(aspect) != new_shape.get(aspect):
                    problems.append(
                        f"{name}.{field}: {aspect} changed from {old_shape.get(aspect)!r} to {new_shape.get(aspect)!r}"
                    )
        for number in old["reserved"]:
            if number in numbers_in_use:
                problems.append(f"{name}: reserved number {number} is reused by {numbers_in_use[number]}")
    for name, old in published["enums"].items():
        new = current["enums"].get(name)
        if new is None:
            problems.append(f"enum {name} was removed")
            continue
        values_in_use = {number: value for value, number in new["values"].items()}
        for value, number in old["values"].items():
            if value not in new["values"]:
                if number not in new["reserved"]:
                    problems.append(f"{name}.{value} was removed without reserving number {number}")
                if number in values_in_use:
                    problems.append(f"{name}: number {number} of removed value {value} is reused by {values_in_use[number]}")
            elif new["values"][value] != number:
                problems.append(f"{name}.{value}: number changed from {number} to {new['values'][value]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check the generated schemas against the lock file; optionally record additions."""
    parser = argparse.ArgumentParser(
        prog="python -m captioning_common.events.compat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="lock file (default: %(default)s)")
    parser.add_argument("--write", action="store_true", help="record the current schemas when they are compatible")
    args = parser.parse_args(argv)

    from captioning_common.events.registry import SCHEMA_MODULES
    from captioning_events.v1 import common_pb2

    current = snapshot_of((common_pb2, *SCHEMA_MODULES))
    published = json.loads(args.lock.read_text()) if args.lock.exists() else {"messages": {}, "enums": {}}
    problems = breaking_changes(published, current)
    for problem in problems:
        print(f"BREAKING: {problem}", file=sys.stderr)
    if problems:
        return 1
    if args.write:
        args.lock.write_text(json.dumps(current, indent=2, sort_keys=False) + "\n")
        print(f"recorded {len(current['messages'])} messages and {len(current['enums'])} enums in {args.lock}")
    else:
        print("schemas are compatible with the published lock")
    return 0


if __name__ == "__main__":
    sys.exit(main())
