"""Real Kafka and S3: replay sends dead letters back only to the topic their DLQ belongs to, oversized ones included."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from captioning_common.kafka import EventProducer, ProduceError, load_topics
from captioning_common.kafka.dead_letter import dead_letter_object_key, fit_dead_letter
from captioning_common.kafka.replay import replay, source_topic_of
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings, S3Settings
from captioning_common.storage import ObjectStore
from captioning_events.v1.common_pb2 import ObjectRef
from captioning_events.v1.dead_letter_pb2 import DeadLetter

HEADERS = {"ce_type": "io.captioning.image.uploaded", "ce_id": "1"}


def create_topics(settings: KafkaSettings, *names: str) -> None:
    admin = AdminClient(settings.client_config())
    for future in admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1) for name in names]).values():
        future.result(30)


def read_all(settings: KafkaSettings, topic: str) -> list:
    consumer = Consumer(settings.client_config() | {"group.id": uuid.uuid4().hex})
    try:
        high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        records, deadline = [], time.monotonic() + 30
        while len(records) < high and time.monotonic() < deadline:
            record = consumer.poll(1.0)
            if record is not None and record.error() is None:
                records.append(record)
        return records
    finally:
        consumer.close()


def letter(source: str, offset: int, value: bytes, **fields) -> DeadLetter:
    return DeadLetter(
        stage="caption", source_topic=source, source_partition=0, source_offset=offset, original_key=f"key-{offset}".encode(),
        original_value=value, original_headers=HEADERS, error_code="image_undecodable", image_id=f"{offset:064x}", **fields,
    )


def test_replay_produces_only_to_the_dlq_source_and_reads_oversized_values_back(kafka: KafkaSettings, s3: S3Settings) -> None:
    source = f"test.replay{uuid.uuid4().hex[:8]}"
    victim = f"test.victim{uuid.uuid4().hex[:8]}"
    dlq = source + ".dlq"
    create_topics(kafka, source, victim, dlq)
    spec = load_topics(f'[defaults]\npartitions = 1\nreplication_factor = 1\nretention_ms = 60000\ncleanup_policy = "delete"\n'
                       f'dead_letter_retention_ms = 60000\n[topics."{source}"]\ndescription = "test"\ndead_letter = true\n')
    assert source_topic_of(dlq, spec) == source
    store = ObjectStore(s3)
    big_value = os.urandom(900_000)
    oversized = letter(source, 7, big_value, error_message="traceback line\n" * 14_000)  # about 1.1 MB in all
    producer = EventProducer(kafka, source="tests/replay")
    try:
        with pytest.raises(ProduceError, match="too large|MSG_SIZE_TOO_LARGE"):
            producer.send(dlq, oversized, key="key-7")  # why the letter must be fitted first
        fitted = fit_dead_letter(oversized, store, kafka.max_message_bytes)
        assert fitted.original_value == b"" and fitted.original_object.key == dead_letter_object_key(source, 0, 7)
        outside = letter(source, 8, b"")
        outside.original_object.CopyFrom(ObjectRef(bucket=s3.bucket, key=dead_letter_object_key(source, 0, 7).replace("/0-7", "/0-9")))
        for event in (letter(source, 5, b"small"), letter(victim, 6, b"forged"), fitted, outside):
            producer.send(dlq, event, key=event.original_key.decode())
    finally:
        producer.close()

    report = replay(dlq, kafka, ImageRecords(store), topics=spec)

    assert (report.read, report.replayed, report.wrong_source, report.unreadable) == (4, 2, 1, 1)
    replayed = read_all(kafka, source)
    assert [(r.key(), len(r.value())) for r in replayed] == [(b"key-5", 5), (b"key-7", len(big_value))]
    assert replayed[1].value() == big_value
    assert {k: v.decode() for k, v in replayed[1].headers()} == HEADERS
    assert read_all(kafka, victim) == [], "a letter naming another source topic is never produced"
    store.delete(fitted.original_object.key)

