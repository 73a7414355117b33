"""Kafka topics from the declarative spec in ``topics.toml``, and creating them.

Usage::

    python -m captioning_common.kafka list
    python -m captioning_common.kafka apply   # create missing topics, check existing ones
    python -m captioning_common.kafka apply --partitions 12 --replication-factor 3 --topic-partitions images.uploaded=24
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, replace
from importlib import resources

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from google.protobuf.message import Message

from captioning_common.events.registry import EVENT_TYPES

from captioning_common.settings import KafkaSettings

DEAD_LETTER_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the spec declares it."""

    name: str
    partitions: int
    replication_factor: int
    retention_ms: int
    cleanup_policy: str
    description: str
    event: str = ""
    producer: str = ""
    consumers: tuple[str, ...] = ()
    role: str = ""

    @property
    def config(self) -> dict[str, str]:
        """Topic-level broker configuration."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


def dead_letter_topic(topic: str) -> str:
    """Name of the dead-letter topic of a consumed topic."""
    return topic + DEAD_LETTER_SUFFIX


def load_topics(text: str | None = None) -> dict[str, TopicSpec]:
    """Every topic of the spec, dead-letter topics included, by name."""
    spec = tomllib.loads(text if text is not None else resources.files(__package__).joinpath("topics.toml").read_text())
    defaults = spec["defaults"]
    topics: dict[str, TopicSpec] = {}
    for name, entry in spec["topics"].items():
        merged = defaults | entry
        topics[name] = TopicSpec(
            name=name,
            partitions=merged["partitions"],
            replication_factor=merged["replication_factor"],
            retention_ms=merged["retention_ms"],
            cleanup_policy=merged["cleanup_policy"],
            description=merged["description"],
            event=merged.get("event", ""),
            producer=merged.get("producer", ""),
            consumers=tuple(merged.get("consumers", ())),
            role=merged.get("role", ""),
        )
        if merged.get("dead_letter", False):
            dlq = dead_letter_topic(name)
            topics[dlq] = TopicSpec(
                name=dlq,
                partitions=merged["partitions"],
                replication_factor=merged["replication_factor"],
                retention_ms=defaults["dead_letter_retention_ms"],
                cleanup_policy="delete",
                description=f"Messages the consumer of {name} could not process (DeadLetter).",
                event="DeadLetter",
                producer=",".join(merged.get("consumers", ())),
            )
    return topics


def sized(
    topics: dict[str, TopicSpec], partitions: int | None = None, replication_factor: int | None = None, per_topic: dict[str, int] | None = None
) -> dict[str, TopicSpec]:
    """The spec with a cluster's sizes: every topic gets ``partitions`` and ``replication_factor`` when given,
    and each topic of ``per_topic`` (and its dead-letter topic) its own partition count."""
    per_topic = per_topic or {}
    unknown = sorted(set(per_topic) - set(topics))
    if unknown:
        raise KeyError(f"no such topic in the spec: {', '.join(unknown)}")
    sized_topics = {}
    for name, spec in topics.items():
        own = per_topic.get(name) or per_topic.get(name.removesuffix(DEAD_LETTER_SUFFIX))
        sized_topics[name] = replace(
            spec,
            partitions=own or partitions or spec.partitions,
            replication_factor=replication_factor or spec.replication_factor,
        )
    return sized_topics


class StageTopics:
    """The topics one stage consumes and produces, read from the spec (no service spells a topic name)."""

    def __init__(self, stage: str, topics: dict[str, TopicSpec] | None = None) -> None:
        self.stage = stage
        self._topics = topics if topics is not None else load_topics()

    @property
    def inputs(self) -> dict[str, type[Message]]:
        """Each topic the stage consumes, with the event class it carries."""
        return {name: _event_class(spec) for name, spec in self._topics.items() if self.stage in spec.consumers}

    def output(self, event: type[Message], role: str = "") -> str:
        """The topic this stage produces ``event`` to (``role`` picks a second output of the same event)."""
        found = [
            name for name, spec in self._topics.items()
            if spec.producer == self.stage and spec.event == event.__name__ and spec.role == role
        ]
        if len(found) != 1:
            raise LookupError(f"the topic spec declares {len(found)} topics where {self.stage} produces {event.__name__} (role {role!r})")
        return found[0]


def _event_class(spec: TopicSpec) -> type[Message]:
    classes = {cls.__name__: cls for cls in EVENT_TYPES}
    if spec.event not in classes:
        raise LookupError(f"topic {spec.name} declares an unknown event {spec.event!r}")
    return classes[spec.event]


def apply_topics(settings: KafkaSettings, topics: dict[str, TopicSpec] | None = None, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; raise when an existing one has fewer partitions than declared.

    Returns the names created.
    """
    topics = topics if topics is not None else load_topics()
    admin = AdminClient(settings.client_config())
    existing = admin.list_topics(timeout=timeout_s).topics
    for name, spec in topics.items():
        if name in existing and len(existing[name].partitions) < spec.partitions:
            raise RuntimeError(f"topic {name} has {len(existing[name].partitions)} partitions, spec says {spec.partitions}")
    missing = [
        NewTopic(spec.name, num_partitions=spec.partitions, replication_factor=spec.replication_factor, config=spec.config)
        for name, spec in topics.items()
        if name not in existing
    ]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def main(argv: list[str] | None = None) -> int:
    """List the declared topics, or apply them to the cluster in the settings."""
    parser = argparse.ArgumentParser(
        prog="python -m captioning_common.kafka", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["list", "apply"])
    parser.add_argument("--partitions", type=int, help="partitions of every topic (default: the spec's)")
    parser.add_argument("--replication-factor", type=int, help="replication factor of every topic (default: the spec's)")
    parser.add_argument(
        "--topic-partitions", action="append", default=[], metavar="TOPIC=N", help="partitions of one topic and its dead-letter topic (repeatable)"
    )
    args = parser.parse_args(argv)
    per_topic = {}
    for item in args.topic_partitions:
        name, _, count = item.partition("=")
        if not count.isdigit() or int(count) < 1:
            parser.error(f"--topic-partitions wants TOPIC=N with N >= 1, not {item!r}")
        per_topic[name] = int(count)
    if any(value is not None and value < 1 for value in (args.partitions, args.replication_factor)):
        parser.error("--partitions and --replication-factor must be at least 1")
    try:
        topics = sized(load_topics(), args.partitions, args.replication_factor, per_topic)
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    if args.command == "list":
        for spec in topics.values():
            print(f"{spec.name:28} partitions={spec.partitions} replication={spec.replication_factor} retention_ms={spec.retention_ms} {spec.description}")
        return 0
    created = apply_topics(KafkaSettings(), topics)
    print(f"{len(topics)} topics declared, {len(created)} created: {', '.join(created) or '-'}")
    return 0

