"""Real Kafka: the shared producer and consumer lose nothing, duplicate nothing, keep per-key order."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from captioning_common.events import EventEnvelope, decode_event
from captioning_common.kafka import (
    EventProducer,
    apply_topics,
    dead_letter_for,
    dead_letter_topic_of,
    load_topics,
)
from captioning_common.kafka.reading import read_range
from captioning_common.settings import KafkaSettings
from captioning_events.v1.image_pb2 import ImageUploaded
from tests.conftest import REPO_ROOT
from tests.integration.kafka_worker import recording_runtime

PARTITIONS = 6


def fresh_topic(settings: KafkaSettings, partitions: int = PARTITIONS) -> str:
    name = f"test.{uuid.uuid4().hex[:10]}"
    admin = AdminClient(settings.client_config())
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    return name


def produce_keyed(settings: KafkaSettings, topic: str, keys: int, per_key: int) -> None:
    """keys x per_key events; event i of a key carries seq=i."""
    producer = EventProducer(settings, source="tests/kafka")
    futures = []
    for seq in range(per_key):
        for k in range(keys):
            key = hashlib.sha256(f"image-{k:04d}".encode()).hexdigest()
            event = ImageUploaded(image_id=key, content_type="image/png", metadata={"seq": str(seq)})
            futures.append(producer.produce(topic, event, key=key))
    deliveries = [future.result(60) for future in futures]
    producer.close()
    assert len({(d.partition, d.offset) for d in deliveries}) == keys * per_key
    assert len({d.partition for d in deliveries}) == PARTITIONS, "keys should spread over every partition"


def committed_offsets(settings: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer(settings.client_config() | {"group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return {tp.partition: tp.offset for tp in committed}
    finally:
        consumer.close()


def end_offsets(settings: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = Consumer(settings.client_config() | {"group.id": "watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)}
    finally:
        consumer.close()


def test_declared_topics_exist_with_their_partitions(kafka: KafkaSettings) -> None:
    spec = load_topics()
    metadata = AdminClient(kafka.client_config()).list_topics(timeout=10).topics
    for name, topic in spec.items():
        assert name in metadata, f"{name} missing"
        assert len(metadata[name].partitions) == topic.partitions
    assert apply_topics(kafka, spec) == [], "applying the spec twice must create nothing"


def test_10000_keyed_events_none_lost_none_duplicated_order_kept(kafka: KafkaSettings) -> None:
    topic = fresh_topic(kafka)
    keys, per_key = 100, 100
    produce_keyed(kafka, topic, keys, per_key)

    group = f"group-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[str, int, str, str, str]] = []
    lock = threading.Lock()
    done = threading.Event()

    def handle(batch) -> None:
        for inbound in batch:
            with lock:
                seen.append((inbound.image_id, int(inbound.event.metadata["seq"]), inbound.subject, (inbound.partition, inbound.offset)))
                if len(seen) >= keys * per_key:
                    done.set()

    # Two members of one group, each a stage runtime; the second joins mid-stream, forcing a cooperative rebalance.
    members = [recording_runtime(kafka, group, topic, handle, batch_size=200) for _ in range(2)]
    threads = [threading.Thread(target=member.run) for member in members]
    threads[0].start()
    time.sleep(1.5)
    threads[1].start()
    assert done.wait(120), f"only {len(seen)} of {keys * per_key} events consumed"
    time.sleep(2)  # anything duplicated would arrive now
    for member in members:
        member.stop()
    for thread in threads:
        thread.join(30)

    assert len(seen) == keys * per_key, f"{len(seen) - keys * per_key} duplicates"
    assert len({(key, seq) for key, seq, *_ in seen}) == keys * per_key
    per_key_order: dict[str, list[int]] = defaultdict(list)
    for key, seq, subject, _ in seen:
        per_key_order[key].append(seq)
        assert subject == key
    assert all(order == list(range(per_key)) for order in per_key_order.values()), "per-key order broken"
    assert len({position for *_, position in seen}) == keys * per_key
    assert committed_offsets(kafka, group, topic) == end_offsets(kafka, topic)


def test_sigterm_mid_stream_then_restart_resumes_from_committed_offset(kafka: KafkaSettings, tmp_path: Path) -> None:
    topic = fresh_topic(kafka)
    total = 3000
    produce_keyed(kafka, topic, keys=30, per_key=total // 30)
    group = f"group-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "processed.txt"
    command = [sys.executable, "-m", "tests.integration.kafka_worker", topic, group, str(out)]

    def lines() -> list[tuple[str, int, int, int]]:
        if not out.exists():
            return []
        return [(k, int(s), int(p), int(o)) for k, s, p, o in (line.split() for line in out.read_text().splitlines())]

    first = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while len(lines()) < 500 and time.monotonic() < deadline:
        time.sleep(0.1)
    first.send_signal(signal.SIGTERM)
    output, _ = first.communicate(timeout=60)
    assert first.returncode == 0, output
    assert "worker stopped cleanly" in output
    before_restart = lines()
    assert 500 <= len(before_restart) < total, "the worker must be stopped mid-stream"

    # Graceful stop: everything processed was committed, nothing more.
    committed = committed_offsets(kafka, group, topic)
    processed_per_partition = Counter(p for _, _, p, _ in before_restart)
    for partition, count in processed_per_partition.items():
        assert committed[partition] == count, f"partition {partition}: committed {committed[partition]}, processed {count}"

    second = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len(lines()) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    second.send_signal(signal.SIGTERM)
    second.communicate(timeout=60)

    after = lines()
    resumed = after[len(before_restart):]
    first_offsets_after_restart = {}
    for _, _, partition, offset in resumed:
        first_offsets_after_restart.setdefault(partition, offset)
    for partition, offset in first_offsets_after_restart.items():
        assert offset == max(committed[partition], 0), f"partition {partition} resumed at {offset}, committed {committed[partition]}"
    assert len(after) == total, f"{len(after)} records processed for {total} produced"
    assert len({(k, s) for k, s, _, _ in after}) == total, "lost or duplicated records"


def test_producer_reports_failure_instead_of_success(kafka: KafkaSettings) -> None:
    producer = EventProducer(kafka, source="tests/kafka", **{"delivery.timeout.ms": 3000})
    try:
        with pytest.raises(Exception, match="delivery to test.no-such-topic"):
            producer.send("test.no-such-topic", ImageUploaded(image_id="x"), key="x", timeout=30)
    finally:
        producer.close()


def test_envelope_headers_survive_the_broker(kafka: KafkaSettings) -> None:
    topic = fresh_topic(kafka, partitions=1)
    producer = EventProducer(kafka, source="tests/envelope")
    producer.send(topic, ImageUploaded(image_id="abc", width=640, height=480), key="abc")
    producer.close()
    consumer = Consumer(kafka.client_config() | {"group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    record = None
    deadline = time.monotonic() + 30
    while record is None and time.monotonic() < deadline:
        record = consumer.poll(1.0)
    consumer.close()
    assert record is not None and record.error() is None
    envelope = EventEnvelope.from_headers(record.headers())
    assert (envelope.source, envelope.subject, envelope.type) == ("tests/envelope", "abc", "io.captioning.image.uploaded")
    assert dict(record.headers())["content-type"] == b"application/protobuf"
    _, event = decode_event(record.headers(), record.value())
    assert (event.width, event.height) == (640, 480)

    dead = dead_letter_for(record, stage="caption", error_code="image_undecodable", error_message="not a JPEG")
    assert (dead.source_topic, dead.source_partition, dead.source_offset) == (topic, 0, record.offset())
    assert (dead.image_id, dead.original_key, dead.error_code, dead.attempts) == ("abc", b"abc", "image_undecodable", 1)
    assert dead.original_headers["ce_type"] == "io.captioning.image.uploaded"
    assert dead_letter_topic_of(record) == topic + ".dlq"
    replayed = [(key, value.encode()) for key, value in dead.original_headers.items()]
    assert decode_event(replayed, dead.original_value)[1] == event, "a dead letter must carry enough to replay"


def test_read_range_returns_each_record_once_with_its_event_and_times_out_short_of_the_end(kafka: KafkaSettings) -> None:
    topic = fresh_topic(kafka, partitions=1)
    producer = EventProducer(kafka, source="tests/kafka")
    events = [ImageUploaded(image_id=f"{i:064x}", content_type="image/png") for i in range(3)]
    for event in events:
        producer.send(topic, event, key=event.image_id)
    producer.produce_raw(topic, b"not-an-event", b"garbage").result(30)
    producer.close()

    def read(starts: dict[int, int], ends: dict[int, int], idle_timeout_s: float = 5.0) -> list:
        consumer = Consumer(kafka.client_config() | {"group.id": f"probe-{uuid.uuid4()}", "enable.auto.commit": False})
        try:
            return [(m.offset(), m.key(), event) for m, event in read_range(consumer, topic, starts, ends, idle_timeout_s)]
        finally:
            consumer.close()

    assert read({0: 0}, {0: 4}) == [(i, e.image_id.encode(), e) for i, e in enumerate(events)] + [(3, b"not-an-event", None)]
    assert [offset for offset, _, _ in read({0: 1}, {0: 3})] == [1, 2]
    assert read({0: 4}, {0: 4}) == []
    with pytest.raises(TimeoutError, match="reached their end"):
        read({0: 2}, {0: 9}, idle_timeout_s=1.0)
