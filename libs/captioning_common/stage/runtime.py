"""The stage runtime: one consume loop that owns the order of side effects.

For each micro-batch it decodes the messages into typed events, calls the stage's
handler, and applies the outcomes in this order:

1. records written (and the ``failure`` record of each input being dead-lettered);
2. every event and dead letter produced and acknowledged by the broker;
3. completion markers written;
4. offsets committed.

A crash anywhere replays the uncommitted messages; handlers are idempotent per
image. When a batch fails, the runtime checks the stage's dependencies: during an
outage nothing is counted and the batch is retried after a backoff. Otherwise the
messages are retried one by one; one that fails ``max_attempts`` times is
dead-lettered with its cause (``retries_exhausted``), so no partition ever stalls.
A message that can never succeed (undecodable, wrong type, invalid image id, a
``Failure`` outcome) is dead-lettered at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from confluent_kafka import Message

from captioning_common.events import EnvelopeError, decode_event
from captioning_common.kafka.consumer import BatchConsumer, Position
from captioning_common.kafka.dead_letter import dead_letter_for, fit_dead_letter
from captioning_common.kafka.producer import EventProducer
from captioning_common.kafka.topics import dead_letter_topic
from captioning_common.logs import image_context
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check, run_checks
from captioning_common.records import ImageRecords, is_image_id
from captioning_common.stage.outcome import Failure, Inbound, Outcome, RecordChange
from captioning_common.stage.settings import StageSettings

log = logging.getLogger(__name__)


class Stage(Protocol):
    """What a service implements: a name, a batch handler, and the dependencies it uses."""

    name: str

    def handle(self, batch: Sequence[Inbound]) -> list[Outcome]:
        """One outcome per inbound event, in order; raise on a transient failure."""

    def dependencies(self) -> dict[str, Check]:
        """Readiness checks of every dependency the handler uses (S3, Triton, the index...)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how fast failed messages are retried."""

    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    @classmethod
    def of(cls, settings: StageSettings) -> RetryPolicy:
        """The policy of a stage's settings."""
        return cls(settings.max_attempts, settings.retry_backoff_s, settings.max_retry_backoff_s)

    def delay(self, failures: int) -> float:
        """Backoff before retry number ``failures`` (1-based)."""
        return min(self.backoff_s * 2 ** (failures - 1), self.max_backoff_s)


class StageRuntime:
    """Consumes a stage's input topics until stopped; see the module docstring for the guarantee."""

    def __init__(
        self,
        stage: Stage,
        inputs: dict[str, type],
        consumer: BatchConsumer,
        producer: EventProducer,
        records: ImageRecords,
        metrics: PipelineMetrics,
        retry: RetryPolicy,
        *,
        io_concurrency: int = 16,
        max_message_bytes: int = 1_000_000,
    ) -> None:
        self.stage = stage
        self.inputs = inputs
        self.consumer = consumer
        self.producer = producer
        self.records = records
        self.metrics = metrics
        self.retry = retry
        self.max_message_bytes = max_message_bytes
        self._io = ThreadPoolExecutor(io_concurrency, thread_name_prefix=f"{stage.name}-io")
        self._attempts: dict[tuple[str, int, int], int] = {}
        self._failures = 0
        self._stopping = threading.Event()
        self._alive = threading.Event()

    def dependencies(self) -> dict[str, Check]:
        """The stage's dependencies plus Kafka."""
        return {"kafka": self.consumer.reachable} | self.stage.dependencies()

    def readiness(self) -> dict[str, Check]:
        """Readiness: the consume loop runs and every dependency answers."""
        return {"consumer": self._alive.is_set} | self.dependencies()

    def stop(self) -> None:
        """Finish the in-flight batch, commit it, and return from ``run``."""
        self._stopping.set()

    def run(self) -> None:
        """Consume until ``stop``; closes the consumer on return."""
        self._alive.set()
        try:
            while not self._stopping.is_set():
                messages = self.consumer.poll_batch()
                if messages:
                    self.process(messages)
                self.metrics.set_lag(self.consumer.lag())
        finally:
            self._alive.clear()
            self.consumer.close()

    def process(self, messages: list[Message]) -> bool:
        """Settle what can be settled, commit it, rewind the rest; True when every message settled."""
        self.metrics.observe_batch(len(messages))
        unsettled = self._settle(messages)
        commits, rewinds = _offsets(messages, unsettled)
        if not self.consumer.commit(commits):
            # A rebalance interrupted the commit, yet this member often keeps the partition:
            # read the batch again (its effects are idempotent) so its offsets get committed.
            self.consumer.seek(_offsets(messages, set(range(len(messages))))[1])
            return False
        if not rewinds:
            self._failures = 0
            return True
        self.consumer.seek(rewinds)
        self._failures += 1
        self._stopping.wait(self.retry.delay(self._failures))
        return False

    def _settle(self, messages: list[Message]) -> set[int]:
        """Indexes of the messages left unsettled (to be read again)."""
        try:
            self._apply(messages)
            return set()
        except Exception as exc:
            if self._outage():
                log.warning("batch failed during an outage; retrying", extra={"error": _cause(exc)})
                return set(range(len(messages)))
            if len(messages) == 1:
                return self._after_failure(0, messages[0], exc)
            log.warning("batch failed; retrying its messages one by one", extra={"error": _cause(exc)})
        unsettled: set[int] = set()
        blocked: set[Position] = set()
        for index, message in enumerate(messages):
            if (message.topic(), message.partition()) in blocked:
                unsettled.add(index)
                continue
            try:
                self._apply([message])
            except Exception as exc:
                if self._outage():
                    return unsettled | set(range(index, len(messages)))
                if self._after_failure(index, message, exc):
                    unsettled.add(index)
                    blocked.add((message.topic(), message.partition()))
        return unsettled

    def _after_failure(self, index: int, message: Message, exc: Exception) -> set[int]:
        """Count a failed attempt; dead-letter the message once attempts are exhausted. Unsettled indexes."""
        key = (message.topic(), message.partition(), message.offset())
        attempts = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempts
        if attempts < self.retry.max_attempts:
            log.warning("message failed; will retry", extra={"attempt": attempts, "error": _cause(exc), "topic": key[0], "offset": key[2]})
            return {index}
        decoded = self._decode(message)
        event = decoded if isinstance(decoded, Inbound) else None
        failure = Failure(
            "retries_exhausted",
            f"failed {attempts} times while every dependency was healthy; last error: {_cause(exc)}",
            None if event is not None else "",
        )
        try:
            self._apply_outcomes([(message, event, Outcome(failure=failure, result="dead_letter"))], attempts)
        except Exception as letter_error:
            log.error("dead letter failed; will retry", extra={"error": _cause(letter_error)})
            return {index}
        del self._attempts[key]
        return set()

    def _apply(self, messages: list[Message]) -> None:
        """Decode, handle and apply the effects of ``messages``; raise when any step fails."""
        decoded = [(message, self._decode(message)) for message in messages]
        inbound = [event for _, event in decoded if isinstance(event, Inbound)]
        with self.metrics.time_stage("handle"):
            outcomes = iter(self.stage.handle(inbound) if inbound else [])
        applied = []
        for message, event in decoded:
            if isinstance(event, Failure):
                applied.append((message, None, Outcome(failure=event, result="dead_letter")))
            else:
                applied.append((message, event, next(outcomes)))
        if next(outcomes, None) is not None:
            raise RuntimeError(f"{self.stage.name}: the handler returned more outcomes than events")
        self._apply_outcomes(applied, 1)
        for message, _, _ in applied:
            self._attempts.pop((message.topic(), message.partition(), message.offset()), None)

    def _apply_outcomes(self, applied: list[tuple[Message, Inbound | None, Outcome]], attempts: int) -> None:
        letters = []
        changes: list[RecordChange] = []
        for message, event, outcome in applied:
            if outcome.failure is not None:
                image_id = outcome.failure.image_id
                if image_id is None:
                    image_id = event.image_id if event is not None else ""
                changes.append(self._failure_record(image_id, outcome.failure))
                letters.append((message, outcome.failure, image_id))
            else:
                changes += outcome.records
        with self.metrics.time_stage("records"):
            self._change_all(changes)
        with self.metrics.time_stage("produce"):
            pending: list[Future] = [
                self.producer.produce(emit.topic, emit.event, key=emit.key)
                for _, _, outcome in applied if outcome.failure is None
                for emit in outcome.events
            ]
            pending += [self._dead_letter(message, failure, image_id, attempts) for message, failure, image_id in letters]
            for future in pending:
                future.result()
        with self.metrics.time_stage("marks"):
            self._change_all([mark for _, _, outcome in applied if outcome.failure is None for mark in outcome.marks])
        for message, _, outcome in applied:
            self.metrics.message(message.topic(), outcome.result)

    def _change_all(self, changes: list[RecordChange]) -> None:
        for future in [self._io.submit(self._change, change) for change in changes if change.image_id]:
            future.result()

    def _change(self, change: RecordChange) -> None:
        if change.body is None:
            self.records.delete(change.image_id, change.stage)
        elif change.version is not None:
            self.records.put_if(change.image_id, change.stage, change.body, change.version)
        else:
            self.records.put(change.image_id, change.stage, change.body)

    def _failure_record(self, image_id: str, failure: Failure) -> RecordChange:
        body = {"stage": self.stage.name, "code": failure.code, "message": failure.message, "failed_at": datetime.now(timezone.utc).isoformat()}
        return RecordChange(image_id if is_image_id(image_id) else "", "failure", body)

    def _dead_letter(self, message: Message, failure: Failure, image_id: str, attempts: int) -> Future:
        letter = dead_letter_for(message, self.stage.name, failure.code, failure.message, attempts)
        letter.image_id = image_id
        letter = fit_dead_letter(letter, self.records.store, self.max_message_bytes)
        topic = dead_letter_topic(message.topic())
        with image_context(image_id or None):
            log.warning("dead-lettered", extra={"code": failure.code, "reason": failure.message, "topic": topic})
        self.metrics.dead_letter(topic, failure.code)
        key = message.key()
        key = key.decode(errors="replace") if isinstance(key, bytes) else key or ""
        return self.producer.produce(topic, letter, key=key, subject=image_id or None)

    def _decode(self, message: Message) -> Inbound | Failure:
        if message.error() is not None:
            return Failure("consumer_error", f"the broker returned an error for this message: {message.error().str()}", "")
        expected = self.inputs.get(message.topic())
        try:
            envelope, event = decode_event(message.headers(), message.value())
        except EnvelopeError as exc:
            return Failure("invalid_event", str(exc), "")
        if expected is None or not isinstance(event, expected):
            wanted = expected.__name__ if expected else "nothing"
            return Failure("invalid_event", f"{message.topic()} carries {wanted}, not {type(event).__name__}", "")
        subject = envelope.subject or ""
        if "image_id" in event.DESCRIPTOR.fields_by_name:
            if not is_image_id(event.image_id):
                return Failure("invalid_event", f"image id {event.image_id[:80]!r} is not 64 lowercase hex characters", "")
            if subject != event.image_id:
                return Failure("invalid_event", f"ce_subject {subject[:80]!r} is not the event's image id {event.image_id}", "")
        return Inbound(event, subject, message.topic(), message.partition(), message.offset())

    def _outage(self) -> bool:
        ok, results = run_checks(self.dependencies())
        if not ok:
            log.warning("a dependency is down", extra={"checks": results})
        return not ok


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _offsets(messages: list[Message], unsettled: set[int]) -> tuple[dict[Position, int], dict[Position, int]]:
    """(offsets to commit, offsets to read again) per partition: commit up to the first unsettled message."""
    first_unsettled: dict[Position, int] = {}
    last: dict[Position, int] = {}
    for index, message in enumerate(messages):
        position = (message.topic(), message.partition())
        last[position] = max(last.get(position, -1), message.offset())
        if index in unsettled:
            first_unsettled[position] = min(first_unsettled.get(position, message.offset()), message.offset())
    commits = {position: first_unsettled.get(position, offset + 1) for position, offset in last.items()}
    return commits, first_unsettled

