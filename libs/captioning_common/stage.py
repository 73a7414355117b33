"""What every consuming stage shares: dead-lettering with a cause, and the consume loop."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from datetime import datetime, timezone

from confluent_kafka import Message

from captioning_common.kafka.consumer import BatchConsumer, BatchHandler
from captioning_common.kafka.dead_letter import dead_letter_for, dead_letter_topic_of
from captioning_common.kafka.producer import Delivery, EventProducer
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import OpsServer
from captioning_common.records import ImageRecords

log = logging.getLogger(__name__)


class DeadLetters:
    """Sends records a stage gives up on to ``<topic>.dlq`` and marks the image failed."""

    def __init__(self, stage: str, producer: EventProducer, records: ImageRecords, metrics: PipelineMetrics) -> None:
        self.stage = stage
        self.producer = producer
        self.records = records
        self.metrics = metrics

    def send(self, record: Message, code: str, message: str, image_id: str | None = None) -> Future[Delivery]:
        """Queue the dead letter of ``record``; the returned future resolves on the broker's ack.

        ``image_id`` defaults to the event's subject; pass ``""`` for a record that
        never became an image. When the image is known, its ``failure`` record is
        written first, so the status API shows the cause as soon as the dead letter exists.
        """
        letter = dead_letter_for(record, self.stage, code, message)
        if image_id is None:
            image_id = letter.image_id
        letter.image_id = image_id
        if image_id:
            self.records.put(image_id, "failure", {
                "stage": self.stage,
                "code": code,
                "message": message,
                "failed_at": datetime.now(timezone.utc).isoformat(),
            })
        topic = dead_letter_topic_of(record)
        log.warning("dead-lettered", extra={"image_id": image_id, "code": code, "reason": message, "topic": topic})
        self.metrics.dead_letter(topic, code)
        self.metrics.message(record.topic(), "dead_letter")
        key = record.key()
        return self.producer.produce(topic, letter, key=(key.decode(errors="replace") if isinstance(key, bytes) else key or ""), subject=image_id or None)


def by_key(batch: list[Message]) -> list[list[Message]]:
    """The batch split by record key, each group in offset order: groups may run concurrently, a group may not."""
    groups: dict[bytes | str | None, list[Message]] = {}
    for record in batch:
        groups.setdefault(record.key(), []).append(record)
    return list(groups.values())


def with_lag(consumer: BatchConsumer, handler: BatchHandler, metrics: PipelineMetrics) -> BatchHandler:
    """``handler`` followed by a refresh of the consumer-lag gauge."""

    def handle(batch: list[Message]) -> None:
        handler(batch)
        metrics.set_lag(consumer.lag())

    return handle


def run_consumer(consumer: BatchConsumer, handler: BatchHandler, metrics: PipelineMetrics, ops: OpsServer, producer: EventProducer) -> None:
    """Serve ops endpoints and consume until SIGTERM/SIGINT; then commit, flush and close everything."""
    consumer.install_signal_handlers()
    ops.start()
    try:
        consumer.run(with_lag(consumer, handler, metrics))
    finally:
        producer.close()
        ops.stop()
        log.info("stopped")


class BackgroundConsumer:
    """Runs a consumer on a thread next to an HTTP API; ``stop`` finishes the in-flight batch and commits."""

    def __init__(self, consumer: BatchConsumer, handler: BatchHandler, metrics: PipelineMetrics, name: str) -> None:
        self._consumer = consumer
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(with_lag(consumer, handler, metrics),), name=name, daemon=True)

    def _run(self, handler: BatchHandler) -> None:
        self._running.set()
        try:
            self._consumer.run(handler)
        finally:
            self._running.clear()

    def running(self) -> bool:
        """Whether the consume loop is alive (a readiness check)."""
        return self._running.is_set()

    def start(self) -> None:
        """Start consuming."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the in-flight batch, commit, leave the group and wait for the thread."""
        self._consumer.stop()
        self._thread.join()
