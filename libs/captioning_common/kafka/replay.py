"""``python -m captioning_common.kafka.replay``: send dead-lettered records back to where they came from.

Reads a dead-letter topic from a point in time (default: its beginning) up to its
end as it is when the command starts, and re-produces each matching record's
original key, value and headers to its source topic: the dead-letter topic's name
less ``.dlq``, both declared in the topic spec. A letter that names another source
topic is skipped and counted, never produced. An original value that a letter keeps
in S3 (too large for the letter) is read back. The image's ``failure`` record is
removed first, so its status follows the new attempt. Every stage is idempotent per
image, so replaying a record twice is harmless. ``--offset PARTITION:OFFSET`` replays
chosen letters only (the web console's replay of a selection runs this same function).
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, Message, TopicPartition

from captioning_common.kafka.consumer import watermarks
from captioning_common.kafka.dead_letter import dead_letter_object_key
from captioning_common.kafka.producer import EventProducer
from captioning_common.kafka.reading import read_range
from captioning_common.kafka.topics import DEAD_LETTER_SUFFIX, TopicSpec, load_topics
from captioning_common.records import ImageRecords, is_image_id
from captioning_common.settings import KafkaSettings, S3Settings
from captioning_common.storage import ObjectStore, read_failure
from captioning_events.v1.dead_letter_pb2 import DeadLetter

log = logging.getLogger(__name__)


@dataclass
class ReplayReport:
    """What a replay did."""

    read: int = 0
    replayed: int = 0
    skipped: int = 0
    # Letters naming a source topic other than their dead-letter topic's: never produced.
    wrong_source: int = 0
    # Letters whose original value, kept in S3, is missing, too large or not where it belongs.
    unreadable: int = 0


def source_topic_of(dlq_topic: str, topics: dict[str, TopicSpec] | None = None) -> str:
    """The topic whose dead letters ``dlq_topic`` holds; ValueError unless the spec declares both."""
    topics = topics if topics is not None else load_topics()
    source = dlq_topic.removesuffix(DEAD_LETTER_SUFFIX)
    if source == dlq_topic or dlq_topic not in topics or source not in topics:
        raise ValueError(f"{dlq_topic} is not a declared dead-letter topic (<declared topic>{DEAD_LETTER_SUFFIX})")
    return source


Selection = set[tuple[int, int]]
"""(partition, offset) of chosen dead letters."""


@dataclass(frozen=True)
class ListedLetter:
    """One record of a dead-letter topic: where it is, and its letter (None when it is not a ``DeadLetter`` event)."""

    partition: int
    offset: int
    letter: DeadLetter | None


def _start_offsets(
    consumer: Consumer, topic: str, since: datetime | None, selection: Selection | None = None
) -> tuple[list[TopicPartition], dict[int, int]]:
    marks = watermarks(consumer, topic)
    ends = {p: high for p, (_, high) in marks.items()}
    if since is None:
        starts = [TopicPartition(topic, p, low) for p, (low, _) in marks.items()]
    else:
        millis = int(since.timestamp() * 1000)
        starts = consumer.offsets_for_times([TopicPartition(topic, p, millis) for p in marks], timeout=10)
        starts = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else ends[tp.partition]) for tp in starts]
    if selection is not None:  # only the partitions with a chosen letter, from the first chosen to the last
        chosen: dict[int, list[int]] = {}
        for partition, offset in selection:
            chosen.setdefault(partition, []).append(offset)
        starts = [TopicPartition(topic, tp.partition, max(tp.offset, min(chosen[tp.partition]))) for tp in starts if tp.partition in chosen]
        ends = {p: min(high, max(chosen[p]) + 1) if p in chosen else high for p, high in ends.items()}
    return starts, ends


def _read(consumer: Consumer, topic: str, starts: list[TopicPartition], ends: dict[int, int]) -> Iterator[tuple[Message, DeadLetter | None]]:
    """Each record of ``topic`` from ``starts`` up to ``ends``, with its letter (None when it is not a DeadLetter)."""
    for message, event in read_range(consumer, topic, {tp.partition: tp.offset for tp in starts}, ends):
        yield message, event if isinstance(event, DeadLetter) else None


def latest_dead_letters(dlq_topic: str, kafka: KafkaSettings, limit: int, topics: dict[str, TopicSpec] | None = None) -> tuple[int, list[ListedLetter]]:
    """(records the topic holds, its newest ``limit`` records, newest first) of the dead-letter topic ``dlq_topic``."""
    source_topic_of(dlq_topic, topics)
    consumer = Consumer(kafka.client_config() | {"group.id": f"dlq-list-{uuid.uuid4()}", "enable.auto.commit": False})
    try:
        marks = watermarks(consumer, dlq_topic)
        starts = [TopicPartition(dlq_topic, p, max(low, high - limit)) for p, (low, high) in marks.items()]
        listed = [ListedLetter(m.partition(), m.offset(), letter) for m, letter in _read(consumer, dlq_topic, starts, {p: h for p, (_, h) in marks.items()})]
    finally:
        consumer.close()
    listed.sort(key=lambda item: (item.letter.failed_at.ToNanoseconds() if item.letter else 0, item.offset), reverse=True)
    return sum(high - low for low, high in marks.values()), listed[:limit]


def replay(
    dlq_topic: str,
    kafka: KafkaSettings,
    records: ImageRecords,
    codes: set[str] | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    topics: dict[str, TopicSpec] | None = None,
    selection: Selection | None = None,
) -> ReplayReport:
    """Re-produce the dead letters of ``dlq_topic`` (those with an error code in ``codes``, if given).

    ``selection``: only the letters at these (partition, offset) positions. ``topics``: the
    topic spec (default: the packaged one); ValueError when it does not declare
    ``dlq_topic`` as a dead-letter topic.
    """
    source = source_topic_of(dlq_topic, topics)
    report = ReplayReport()
    consumer = Consumer(kafka.client_config() | {"group.id": f"dlq-replay-{uuid.uuid4()}", "enable.auto.commit": False})
    producer = None if dry_run else EventProducer(kafka, source="dlq-replay")
    pending = []
    try:
        starts, ends = _start_offsets(consumer, dlq_topic, since, selection)
        for message, letter in _read(consumer, dlq_topic, starts, ends):
            if selection is not None and (message.partition(), message.offset()) not in selection:
                continue
            report.read += 1
            if letter is None:  # a letter of a message that never became an image has no image id
                report.skipped += 1
                continue
            if letter.source_topic != source:
                report.wrong_source += 1
                log.warning("skipped a dead letter naming another source topic", extra={"topic": dlq_topic, "offset": message.offset()})
                continue
            if codes and letter.error_code not in codes:
                report.skipped += 1
                continue
            original = _original_value(letter, records.store, kafka.max_message_bytes)
            if original is None:
                report.unreadable += 1
                continue
            report.replayed += 1
            if producer is None:
                continue
            if is_image_id(letter.image_id):
                records.delete(letter.image_id, "failure")
            headers = [(key, value.encode()) for key, value in letter.original_headers.items()]
            pending.append(producer.produce_raw(source, letter.original_key or None, original, headers))
        for future in pending:
            future.result()
    finally:
        consumer.close()
        if producer is not None:
            producer.close()
    return report


def _original_value(letter: DeadLetter, store: ObjectStore, max_bytes: int) -> bytes | None:
    """The letter's original value, read back from S3 when kept there; None when it cannot be."""
    if not letter.HasField("original_object"):
        return letter.original_value
    ref = letter.original_object
    expected = dead_letter_object_key(letter.source_topic, letter.source_partition, letter.source_offset)
    if (ref.bucket, ref.key) != (store.bucket, expected):
        log.warning("skipped a dead letter whose original is not where dead letters keep it", extra={"key": ref.key[:200]})
        return None
    try:
        return store.get(ref.key, max_bytes=max_bytes)
    except KeyError as exc:
        log.warning("skipped a dead letter whose original cannot be read: %s", read_failure(store.bucket, exc)[1])
        return None


def position(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET`` as a pair of non-negative integers; ValueError otherwise."""
    partition, sep, offset = text.partition(":")
    if not (sep and partition.isdigit() and offset.isdigit()):
        raise ValueError(f"{text!r} is not PARTITION:OFFSET")
    return int(partition), int(offset)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m captioning_common.kafka.replay``."""
    parser = argparse.ArgumentParser(prog="python -m captioning_common.kafka.replay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("topic", help="the dead-letter topic, e.g. images.uploaded.dlq")
    parser.add_argument("--code", action="append", help="replay only this error code (repeatable), e.g. object_missing")
    parser.add_argument("--since", type=datetime.fromisoformat, help="only dead letters written at or after this ISO 8601 time")
    parser.add_argument("--offset", action="append", type=position, metavar="PARTITION:OFFSET",
                        help="replay only the letter at this position of the topic (repeatable), e.g. 3:17")
    parser.add_argument("--dry-run", action="store_true", help="count what would be replayed, produce nothing")
    args = parser.parse_args(argv)
    try:
        source_topic_of(args.topic)
    except ValueError as exc:
        parser.error(str(exc))
    selection = set(args.offset) if args.offset else None
    report = replay(args.topic, KafkaSettings(), ImageRecords(ObjectStore(S3Settings())), set(args.code or []), args.since, args.dry_run, selection=selection)
    verb = "would replay" if args.dry_run else "replayed"
    print(
        f"{args.topic}: read {report.read}, {verb} {report.replayed}, skipped {report.skipped}, "
        f"wrong source topic {report.wrong_source}, original unreadable {report.unreadable}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
