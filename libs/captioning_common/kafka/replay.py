"""``python -m captioning_common.kafka.replay``: send dead-lettered records back to where they came from.

Reads a dead-letter topic from a point in time (default: its beginning) up to its
end as it is when the command starts, and re-produces each matching record's
original key, value and headers to its source topic. The image's ``failure``
record is removed first, so its status follows the new attempt. Every stage is
idempotent per image, so replaying a record twice is harmless.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, TopicPartition

from captioning_common.events import EnvelopeError, decode_expected
from captioning_common.kafka.consumer import watermarks
from captioning_common.kafka.producer import EventProducer
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings, S3Settings
from captioning_common.storage import ObjectStore
from captioning_events.v1.dead_letter_pb2 import DeadLetter


@dataclass
class ReplayReport:
    """What a replay did."""

    read: int = 0
    replayed: int = 0
    skipped: int = 0


def _start_offsets(consumer: Consumer, topic: str, since: datetime | None) -> tuple[list[TopicPartition], dict[int, int]]:
    marks = watermarks(consumer, topic)
    ends = {p: high for p, (_, high) in marks.items()}
    if since is None:
        starts = [TopicPartition(topic, p, low) for p, (low, _) in marks.items()]
    else:
        millis = int(since.timestamp() * 1000)
        starts = consumer.offsets_for_times([TopicPartition(topic, p, millis) for p in marks], timeout=10)
        starts = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else ends[tp.partition]) for tp in starts]
    return starts, ends


def replay(
    dlq_topic: str,
    kafka: KafkaSettings,
    records: ImageRecords,
    codes: set[str] | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    """Re-produce the dead letters of ``dlq_topic`` (those with an error code in ``codes``, if given)."""
    report = ReplayReport()
    consumer = Consumer(kafka.client_config() | {"group.id": f"dlq-replay-{uuid.uuid4()}", "enable.auto.commit": False})
    producer = None if dry_run else EventProducer(kafka, source="dlq-replay")
    pending = []
    try:
        starts, ends = _start_offsets(consumer, dlq_topic, since)
        remaining = {tp.partition for tp in starts if tp.offset < ends[tp.partition]}
        consumer.assign([tp for tp in starts if tp.partition in remaining])
        while remaining:
            message = consumer.poll(5.0)
            if message is None:
                raise TimeoutError(f"{dlq_topic}: no record within 5 s before reaching the end")
            if message.error():
                continue
            if message.offset() + 1 >= ends[message.partition()]:
                remaining.discard(message.partition())
            if message.offset() >= ends[message.partition()]:
                continue
            report.read += 1
            try:
                letter = decode_expected(message.headers(), message.value(), DeadLetter)
            except EnvelopeError:
                report.skipped += 1
                continue
            if codes and letter.error_code not in codes:
                report.skipped += 1
                continue
            report.replayed += 1
            if producer is None:
                continue
            if letter.image_id:
                records.delete(letter.image_id, "failure")
            headers = [(key, value.encode()) for key, value in letter.original_headers.items()]
            pending.append(producer.produce_raw(letter.source_topic, letter.original_key or None, letter.original_value, headers))
        for future in pending:
            future.result()
    finally:
        consumer.close()
        if producer is not None:
            producer.close()
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m captioning_common.kafka.replay``."""
    parser = argparse.ArgumentParser(prog="python -m captioning_common.kafka.replay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("topic", help="the dead-letter topic, e.g. images.uploaded.dlq")
    parser.add_argument("--code", action="append", help="replay only this error code (repeatable), e.g. object_missing")
    parser.add_argument("--since", type=datetime.fromisoformat, help="only dead letters written at or after this ISO 8601 time")
    parser.add_argument("--dry-run", action="store_true", help="count what would be replayed, produce nothing")
    args = parser.parse_args(argv)
    if not args.topic.endswith(".dlq"):
        parser.error("the topic must be a dead-letter topic (ending in .dlq)")
    report = replay(args.topic, KafkaSettings(), ImageRecords(ObjectStore(S3Settings())), set(args.code or []), args.since, args.dry_run)
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{args.topic}: read {report.read}, {verb} {report.replayed}, skipped {report.skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
