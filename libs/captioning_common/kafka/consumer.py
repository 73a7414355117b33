"""Consumer-group reader: polls batches, commits and rewinds exactly the offsets it is told.

The stage runtime (``captioning_common.stage.runtime``) decides what is settled;
this class only speaks Kafka: manual commits, the assignment strategy,
``read_committed``, and the assignment it owns now.

One input topic is assigned cooperative-sticky (a rebalance moves only the partitions
that change owner). Several input topics are assigned round-robin over every topic's
partitions, so each member gets its share of each topic: cooperative-sticky balances
only the count, and two members of the moderation group got one whole topic each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from captioning_common.settings import KafkaSettings

log = logging.getLogger(__name__)

Position = tuple[str, int]  # (topic, partition)
_WATERMARK_RETRY_S = 0.1
# A partition whose leader is loading, moving or being elected: asking again soon succeeds.
_LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
    }
)


def assignment_strategy(topics: Iterable[str]) -> str:
    """``cooperative-sticky`` for one input topic, ``roundrobin`` (balanced per topic) for several."""
    return "cooperative-sticky" if len(set(topics)) == 1 else "roundrobin"


class BatchConsumer:
    """Polls micro-batches of one consumer group; offsets move only through ``commit`` and ``seek``."""

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        topics: Iterable[str],
        *,
        batch_size: int = 100,
        batch_timeout_s: float = 0.5,
        **overrides: str | int,
    ) -> None:
        self.topics = list(topics)
        config = settings.client_config() | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": assignment_strategy(self.topics),
            "isolation.level": "read_committed",
            "session.timeout.ms": settings.session_timeout_ms,
            "max.poll.interval.ms": settings.max_poll_interval_ms,
        }
        config.update(overrides)
        self._consumer = Consumer(config)
        self._admin = AdminClient(settings.client_config())  # the consumer's own calls wait while it polls
        self._batch_size = batch_size
        self._batch_timeout_s = batch_timeout_s
        self._assignment: set[Position] = set()
        self._subscribed = False

    @property
    def assignment(self) -> set[Position]:
        """(topic, partition) pairs this member owns now."""
        return set(self._assignment)

    def poll_batch(self) -> list[Message]:
        """Up to ``batch_size`` messages, in offset order per partition.

        A message that carries an error of its own partition and offset is returned
        too (the runtime dead-letters it, so its offset is never skipped silently);
        client-level errors are logged and raised when fatal.
        """
        if not self._subscribed:
            self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
            self._subscribed = True
        batch = []
        for message in self._consumer.consume(self._batch_size, self._batch_timeout_s):
            error = message.error()
            if error is None:
                batch.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                continue
            elif error.fatal():
                raise KafkaException(error)
            elif message.topic() and message.partition() is not None and (message.offset() if message.offset() is not None else -1) >= 0:
                batch.append(message)
            else:
                log.warning("consumer error", extra={"error": error.str()})
        return batch

    def commit(self, offsets: dict[Position, int]) -> bool:
        """Commit the next offset to read per owned partition, synchronously; False when the group moved on."""
        owned = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items() if (topic, partition) in self._assignment]
        if not owned:
            return True
        try:
            self._consumer.commit(offsets=owned, asynchronous=False)
        except KafkaException as exc:
            # The group moved on (e.g. a rebalance): the new owner re-reads these
            # messages, which is what at-least-once promises.
            log.warning("offset commit failed", extra={"error": str(exc)})
            return False
        return True

    def seek(self, offsets: dict[Position, int]) -> None:
        """Read each owned partition again from the given offset."""
        for (topic, partition), offset in offsets.items():
            if (topic, partition) in self._assignment:
                self._consumer.seek(TopicPartition(topic, partition, offset))

    def lag(self) -> dict[Position, int]:
        """Messages behind the high watermark, per owned partition (from cached watermarks)."""
        partitions = [TopicPartition(topic, partition) for topic, partition in self._assignment]
        lag = {}
        for position in self._consumer.position(partitions):
            _, high = self._consumer.get_watermark_offsets(position, cached=True)
            if high < 0 or position.offset == OFFSET_INVALID:
                continue
            lag[(position.topic, position.partition)] = max(high - position.offset, 0)
        return lag

    def reachable(self) -> bool:
        """True when the cluster answers and has every input topic (a readiness check)."""
        existing = self._admin.list_topics(timeout=2).topics
        return all(topic in existing for topic in self.topics)

    def close(self) -> None:
        """Leave the group and close the client."""
        self._consumer.close()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment.update((p.topic, p.partition) for p in partitions)
        log.info("partitions assigned", extra={"partitions": _names(partitions)})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment.difference_update((p.topic, p.partition) for p in partitions)
        log.info("partitions revoked", extra={"partitions": _names(partitions)})

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment.difference_update((p.topic, p.partition) for p in partitions)
        log.warning("partitions lost", extra={"partitions": _names(partitions)})


def watermarks(consumer: Consumer, topic: str, timeout_s: float = 10.0) -> dict[int, tuple[int, int]]:
    """(low, high) watermark of each partition of ``topic``, asked of the broker.

    A retriable refusal (a leader still loading its partitions after a start, or being
    elected after a broker left) is asked again until ``timeout_s`` has passed.
    """
    deadline = time.monotonic() + timeout_s
    partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
    return {p: _watermark(consumer, TopicPartition(topic, p), deadline) for p in partitions}


def _watermark(consumer: Consumer, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    while True:
        try:
            return consumer.get_watermark_offsets(partition, timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaException as exc:
            if exc.args[0].code() not in _LEADER_MOVING or time.monotonic() >= deadline:
                raise
        time.sleep(_WATERMARK_RETRY_S)


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{p.topic}[{p.partition}]" for p in partitions)
