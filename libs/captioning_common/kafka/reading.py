"""Reading a stretch of a topic outside any consumer group, from given offsets to given ends."""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import Consumer, Message, TopicPartition
from google.protobuf.message import Message as Event

from captioning_common.events import EnvelopeError, decode_event


def read_range(
    consumer: Consumer, topic: str, starts: dict[int, int], ends: dict[int, int], idle_timeout_s: float = 5.0
) -> Iterator[tuple[Message, Event | None]]:
    """Each record of ``topic`` from offset ``starts[p]`` up to ``ends[p]`` (exclusive) of each
    partition ``p``, with its decoded event (None when the record is not a valid event).

    Assigns ``consumer`` to those partitions. TimeoutError when no record arrives for
    ``idle_timeout_s`` before every partition reached its end.
    """
    remaining = {partition for partition, first in starts.items() if first < ends[partition]}
    consumer.assign([TopicPartition(topic, partition, starts[partition]) for partition in remaining])
    last_record = time.monotonic()
    while remaining:
        message = consumer.poll(0.5)
        if message is None or message.error():
            if time.monotonic() - last_record > idle_timeout_s:
                raise TimeoutError(f"{topic}: no record for {idle_timeout_s:g} s before partitions {sorted(remaining)} reached their end")
            continue
        last_record = time.monotonic()
        partition, offset = message.partition(), message.offset()
        if offset + 1 >= ends[partition]:
            remaining.discard(partition)
        if offset >= ends[partition]:
            continue
        try:
            _, event = decode_event(message.headers(), message.value())
        except EnvelopeError:
            event = None
        yield message, event
