"""Consumer-group reader that commits offsets only after a batch was processed."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition

from captioning_common.settings import KafkaSettings

log = logging.getLogger(__name__)

BatchHandler = Callable[[list[Message]], None]


class BatchConsumer:
    """At-least-once consumer: poll a batch, hand it to a handler, then commit.

    - Offsets are committed synchronously after the handler returned, never before.
    - A handler that raises gets the same batch again after an exponential backoff
      (the partitions are rewound), so a transient failure never skips a record.
      Records that can never succeed must be dead-lettered by the handler itself.
    - ``stop()`` (or SIGTERM/SIGINT after ``install_signal_handlers``) lets the
      in-flight batch finish, commits it, and leaves the group cleanly.
    - Cooperative-sticky rebalancing: batches are processed and committed between
      polls, so a revoked partition never has uncommitted processed records.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        topics: Iterable[str],
        *,
        batch_size: int = 100,
        batch_timeout_s: float = 0.5,
        retry_backoff_s: float = 0.5,
        max_retry_backoff_s: float = 30.0,
        **overrides: str | int,
    ) -> None:
        config = settings.client_config() | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "isolation.level": "read_committed",
            "session.timeout.ms": settings.session_timeout_ms,
            "max.poll.interval.ms": settings.max_poll_interval_ms,
        }
        config.update(overrides)
        self._consumer = Consumer(config)
        self._topics = list(topics)
        self._batch_size = batch_size
        self._batch_timeout_s = batch_timeout_s
        self._retry_backoff_s = retry_backoff_s
        self._max_retry_backoff_s = max_retry_backoff_s
        self._stopping = threading.Event()
        self._assignment: set[tuple[str, int]] = set()

    @property
    def assignment(self) -> set[tuple[str, int]]:
        """(topic, partition) pairs this member owns now."""
        return set(self._assignment)

    def stop(self) -> None:
        """Ask ``run`` to finish the in-flight batch, commit and return."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        """Make SIGTERM and SIGINT stop the consumer gracefully (main thread only)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment.update((p.topic, p.partition) for p in partitions)
        log.info("partitions assigned", extra={"partitions": _names(partitions)})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment.difference_update((p.topic, p.partition) for p in partitions)
        log.info("partitions revoked", extra={"partitions": _names(partitions)})

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment.difference_update((p.topic, p.partition) for p in partitions)
        log.warning("partitions lost", extra={"partitions": _names(partitions)})

    def run(self, handler: BatchHandler) -> None:
        """Consume until stopped, calling ``handler`` on each batch; closes the consumer on return."""
        self._consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        failures = 0
        try:
            while not self._stopping.is_set():
                batch = self._poll_batch()
                if not batch:
                    continue
                try:
                    handler(batch)
                except Exception:
                    failures += 1
                    delay = min(self._retry_backoff_s * 2 ** (failures - 1), self._max_retry_backoff_s)
                    log.exception("batch failed; retrying", extra={"attempt": failures, "retry_in_s": delay})
                    self._rewind(batch)
                    self._stopping.wait(delay)
                    continue
                failures = 0
                self._commit(batch)
        finally:
            self._consumer.close()

    def _poll_batch(self) -> list[Message]:
        records = self._consumer.consume(self._batch_size, self._batch_timeout_s)
        batch = []
        for record in records:
            error = record.error()
            if error is None:
                batch.append(record)
            elif error.code() == KafkaError._PARTITION_EOF:
                continue
            elif error.fatal():
                raise KafkaException(error)
            else:
                log.warning("consumer error", extra={"error": error.str()})
        return batch

    def _rewind(self, batch: list[Message]) -> None:
        for partition in _first_offsets(batch):
            if (partition.topic, partition.partition) in self._assignment:
                self._consumer.seek(partition)

    def _commit(self, batch: list[Message]) -> None:
        offsets = [
            TopicPartition(topic, partition, offset + 1)
            for (topic, partition), offset in _last_offsets(batch).items()
            if (topic, partition) in self._assignment
        ]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The group moved on (e.g. max.poll.interval exceeded): the new owner
            # re-reads these records, which is what at-least-once promises.
            log.warning("offset commit failed", extra={"error": str(exc)})

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the high watermark, per owned partition (from cached watermarks)."""
        partitions = [TopicPartition(topic, partition) for topic, partition in self._assignment]
        lag = {}
        for position in self._consumer.position(partitions):
            _, high = self._consumer.get_watermark_offsets(position, cached=True)
            if high < 0 or position.offset == OFFSET_INVALID:
                continue
            lag[(position.topic, position.partition)] = max(high - position.offset, 0)
        return lag


def watermarks(consumer: Consumer, topic: str, timeout_s: float = 10.0) -> dict[int, tuple[int, int]]:
    """(low, high) watermark of each partition of ``topic``, asked of the broker."""
    partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s) for p in partitions}


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{p.topic}[{p.partition}]" for p in partitions)


def _first_offsets(batch: list[Message]) -> list[TopicPartition]:
    first: dict[tuple[str, int], int] = {}
    for record in batch:
        key = (record.topic(), record.partition())
        first[key] = min(first.get(key, record.offset()), record.offset())
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in first.items()]


def _last_offsets(batch: list[Message]) -> dict[tuple[str, int], int]:
    last: dict[tuple[str, int], int] = {}
    for record in batch:
        key = (record.topic(), record.partition())
        last[key] = max(last.get(key, record.offset()), record.offset())
    return last

