"""Real Kafka: the producer's callback thread survives a failing callback, and a send never waits forever."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from captioning_common.kafka import EventProducer, ProduceError
from captioning_common.settings import KafkaSettings
from captioning_events.v1.image_pb2 import ImageUploaded


@pytest.fixture()
def topic(kafka: KafkaSettings) -> str:
    name = f"test.producer{uuid.uuid4().hex[:8]}"
    admin = AdminClient(kafka.client_config())  # kept alive until the topic exists
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    return name


def test_a_raising_delivery_callback_leaves_later_sends_working(kafka: KafkaSettings, topic: str) -> None:
    producer = EventProducer(kafka, source="tests/producer")
    called = threading.Event()

    def boom(error, record) -> None:
        called.set()
        raise RuntimeError("a callback bug")

    try:
        producer._producer.produce(topic, value=b"raw", on_delivery=boom)  # a callback of the producer's own client
        assert called.wait(30)
        time.sleep(0.5)
        delivery = producer.send(topic, ImageUploaded(image_id="after"), key="after", timeout=15)
        assert delivery.topic == topic and delivery.offset == 1
    finally:
        producer.close()


def test_a_cancelled_wait_leaves_later_sends_working(kafka: KafkaSettings, topic: str) -> None:
    producer = EventProducer(kafka, source="tests/producer")
    try:
        abandoned = producer.produce(topic, ImageUploaded(image_id="abandoned"), key="abandoned")
        assert abandoned.cancel(), "a caller gave up before the acknowledgement came"
        time.sleep(1.0)
        delivery = producer.send(topic, ImageUploaded(image_id="next"), key="next", timeout=15)
        assert delivery.offset == 1
    finally:
        producer.close()


def test_send_gives_up_after_the_delivery_timeout_and_a_margin(kafka: KafkaSettings, topic: str) -> None:
    producer = EventProducer(kafka, source="tests/producer", **{"delivery.timeout.ms": 2000})
    producer._closed.set()  # no more delivery reports: as if the callback thread had stopped
    producer._poller.join(5)
    outcome: list[BaseException | object] = []

    def send() -> None:
        try:
            outcome.append(producer.send(topic, ImageUploaded(image_id="lost"), key="lost"))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    started = time.monotonic()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sender.join(30)
    try:
        assert not sender.is_alive(), "send must not wait forever for an acknowledgement"
        assert isinstance(outcome[0], ProduceError) and isinstance(outcome[0], TimeoutError)
        assert "no acknowledgement within" in str(outcome[0])
        assert 2.0 <= time.monotonic() - started < 15
    finally:
        producer._producer.flush(10)
        outcome.clear()  # the exception's traceback would keep the producer alive
