"""Idempotent Kafka producer that reports success only once the broker acknowledged."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer
from google.protobuf.message import Message

from captioning_common.events import encode_event
from captioning_common.settings import KafkaSettings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

# How long past the delivery timeout ``send`` still waits for librdkafka's report.
DELIVERY_MARGIN_S = 5.0


@dataclass(frozen=True)
class Delivery:
    """Where the broker stored an acknowledged record."""

    topic: str
    partition: int
    offset: int


class ProduceError(RuntimeError):
    """A record the broker did not acknowledge."""

    def __init__(self, topic: str, error: KafkaError | None, reason: str | None = None) -> None:
        detail = reason or (f"{error.str()} (retriable={error.retriable()})" if error is not None else "unknown")
        super().__init__(f"delivery to {topic} failed: {detail}")
        self.kafka_error = error


class ProduceTimeout(ProduceError, TimeoutError):
    """No delivery report came within the delivery timeout and a margin: the outcome is unknown."""

    def __init__(self, topic: str, waited_s: float) -> None:
        super().__init__(topic, None, f"no acknowledgement within {waited_s:.1f} s")


class EventProducer:
    """Thread-safe producer with ``enable.idempotence=true`` and ``acks=all``.

    ``produce`` returns a future resolved by the broker's acknowledgement; ``send``
    and ``send_async`` wait for it, so a caller never reports success for a record
    that could still be lost, and never longer than the delivery timeout plus
    ``DELIVERY_MARGIN_S`` (then ProduceTimeout). A background thread serves delivery
    callbacks; an exception in one is logged, and the thread goes on.
    """

    def __init__(self, settings: KafkaSettings, source: str, **overrides: str | int) -> None:
        config = settings.client_config() | {
            "enable.idempotence": True,
            "acks": "all",
            "delivery.timeout.ms": settings.delivery_timeout_ms,
            "message.max.bytes": settings.max_message_bytes,
            "linger.ms": 5,
            "compression.type": "lz4",
        }
        config.update(overrides)
        self._wait_s = int(config["delivery.timeout.ms"]) / 1000 + DELIVERY_MARGIN_S
        self._producer = Producer(config)
        self._source = source
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            try:
                self._producer.poll(0.1)
            except Exception:  # a failing callback must not stop the reports of every later record
                log.exception("a delivery callback failed")

    def produce_raw(self, topic: str, key: bytes | str | None, value: bytes | None, headers: Headers | None = None) -> Future[Delivery]:
        """Queue one record; the future resolves to its Delivery or fails with ProduceError."""
        future: Future[Delivery] = Future()

        def on_delivery(error: KafkaError | None, record) -> None:  # runs on the poll thread
            try:
                if error is not None:
                    future.set_exception(ProduceError(topic, error))
                else:
                    future.set_result(Delivery(record.topic(), record.partition(), record.offset()))
            except InvalidStateError:  # the caller cancelled its wait
                pass

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
                return future
            except BufferError:  # local queue full: wait for deliveries to drain it
                self._producer.poll(0.05)
            except KafkaException as exc:
                future.set_exception(ProduceError(topic, exc.args[0]))
                return future

    def produce(self, topic: str, event: Message, key: str, subject: str | None = None) -> Future[Delivery]:
        """Queue one event with its CloudEvents headers; ``subject`` defaults to the key."""
        headers, value = encode_event(event, source=self._source, subject=subject or key)
        return self.produce_raw(topic, key.encode(), value, headers)

    def send(self, topic: str, event: Message, key: str, subject: str | None = None, timeout: float | None = None) -> Delivery:
        """Produce one event and block until the broker acknowledged it.

        ``timeout`` defaults to the delivery timeout plus ``DELIVERY_MARGIN_S``;
        ProduceTimeout (a ProduceError and a TimeoutError) when it passes.
        """
        wait_s = timeout if timeout is not None else self._wait_s
        try:
            return self.produce(topic, event, key, subject).result(wait_s)
        except FutureTimeout:
            raise ProduceTimeout(topic, wait_s) from None

    async def send_async(self, topic: str, event: Message, key: str, subject: str | None = None) -> Delivery:
        """Produce one event and await the broker's acknowledgement, as long as ``send`` would."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.produce(topic, event, key, subject)), self._wait_s)
        except TimeoutError:
            raise ProduceTimeout(topic, self._wait_s) from None

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for queued records; returns how many are still undelivered."""
        return self._producer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued, then stop the callback thread."""
        remaining = self.flush(timeout)
        if remaining:
            log.error("producer closed with undelivered records", extra={"undelivered": remaining})
        self._closed.set()
        self._poller.join()
