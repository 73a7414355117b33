"""The console's own reader of the pipeline's topics: which image moved where, and what is held for review.

It joins no consumer group and commits nothing: the stage topics and every
dead-letter topic are read from their end when the console starts (what happens
from then on), the review queue topic from its beginning (what is held). Each
record becomes an :class:`Update`, handed to the subscribers (the live streams of
the browsers) that follow its image, or the review queue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from dataclasses import dataclass, replace

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from captioning_common.events import EnvelopeError, decode_event
from captioning_common.kafka.topics import StageTopics, TopicSpec, load_topics
from captioning_common.metrics import PipelineMetrics
from captioning_common.records import is_image_id
from captioning_common.settings import KafkaSettings
from captioning_events.v1.dead_letter_pb2 import DeadLetter
from captioning_events.v1.index_pb2 import IndexOperation, IndexUpdated
from captioning_events.v1.moderation_pb2 import ModerationVerdict, Verdict

log = logging.getLogger(__name__)

# Event of a stage topic -> the status an image has once its stage produced it.
STAGE_OF_EVENT = {"ImageUploaded": "received", "CaptionGenerated": "captioned", "ModerationVerdict": "moderated", "IndexUpdated": "indexed"}
PROGRESS = tuple(STAGE_OF_EVENT.values())  # the statuses an image moves through, in order
RETRY_S = 2.0


@dataclass(frozen=True)
class Update:
    """An image moved: ``stage`` it reached (``failed`` for a dead letter), and whether the review queue changed."""

    topic: str
    image_id: str
    stage: str
    queue: str = ""  # "held", "released" or ""


def update_of(topic: str, headers, value: bytes | None, queue_topic: str) -> Update | None:
    """The update one record means, or None (not an event, or no image id)."""
    try:
        envelope, event = decode_event(headers, value)
    except EnvelopeError:
        return None
    image_id = getattr(event, "image_id", "") or envelope.subject or ""
    if not is_image_id(image_id):
        return None  # e.g. the dead letter of a claim-check submission that never became an image
    if isinstance(event, DeadLetter):
        return Update(topic, image_id, "failed")
    if isinstance(event, ModerationVerdict):
        if topic == queue_topic:
            return Update(topic, image_id, "moderated", "held")
        return Update(topic, image_id, "moderated", "" if event.verdict == Verdict.VERDICT_REVIEW else "released")
    if isinstance(event, IndexUpdated) and event.operation == IndexOperation.INDEX_OPERATION_DELETE:
        return Update(topic, image_id, "moderated")  # taken out of the index: moderated, not indexed
    stage = STAGE_OF_EVENT.get(type(event).__name__)
    return Update(topic, image_id, stage) if stage else None


class Subscriber:
    """One live stream: the images it follows, whether it follows the review queue, and its queue of updates."""

    def __init__(self, image_ids: set[str], review_queue: bool) -> None:
        self.image_ids = image_ids
        self.review_queue = review_queue
        self.updates: asyncio.Queue[Update] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    def offer(self, update: Update) -> None:
        """Queue ``update`` (from the reader's thread) when this stream follows its image or the queue change."""
        if update.image_id in self.image_ids or (self.review_queue and update.queue):
            self._loop.call_soon_threadsafe(self.updates.put_nowait, update)


def feed_topics(topics: dict[str, TopicSpec]) -> tuple[list[str], str]:
    """(stage and dead-letter topics read from their end, the review queue topic read from its beginning)."""
    queue_topic = StageTopics("moderation", topics).output(ModerationVerdict, role="review_queue")
    live = [name for name, spec in topics.items() if (spec.event in STAGE_OF_EVENT and name != queue_topic) or spec.event == "DeadLetter"]
    return live, queue_topic


class PipelineFeed:
    """Reads the topics on a thread of its own; keeps the ids held for review, oldest first."""

    def __init__(self, kafka: KafkaSettings, metrics: PipelineMetrics, topics: dict[str, TopicSpec] | None = None) -> None:
        self.kafka = kafka
        self.metrics = metrics
        self.live_topics, self.queue_topic = feed_topics(topics if topics is not None else load_topics())
        self._held: dict[str, None] = {}
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed", daemon=True)

    def held(self) -> list[str]:
        """Ids held for review as the queue topic says, oldest first (the stored verdict is the last word)."""
        with self._lock:
            return list(self._held)

    def release(self, image_id: str) -> None:
        """Forget ``image_id`` (its stored verdict is no longer a review); a new hold brings it back."""
        with self._lock:
            self._held.pop(image_id, None)

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def ready(self) -> bool:
        """True once the queue topic was read to its end and the reader is running (a readiness check)."""
        return self._caught_up.is_set() and self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._read()
            except Exception as exc:  # the cluster is unreachable or a topic is missing: try again
                log.warning("feed reader failed; retrying", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
                self._stopping.wait(RETRY_S)

    def _read(self) -> None:
        consumer = Consumer(self.kafka.client_config() | {
            "group.id": f"console-feed-{uuid.uuid4()}", "enable.auto.commit": False, "enable.partition.eof": True,
        })
        try:
            existing = consumer.list_topics(timeout=10).topics
            missing = [t for t in [*self.live_topics, self.queue_topic] if t not in existing]
            if missing:
                raise LookupError(f"topics missing: {', '.join(missing)}")
            queue_partitions = set(existing[self.queue_topic].partitions)
            consumer.assign(
                [TopicPartition(t, p, OFFSET_END) for t in self.live_topics for p in existing[t].partitions]
                + [TopicPartition(self.queue_topic, p, OFFSET_BEGINNING) for p in queue_partitions]
            )
            with self._lock:
                self._held.clear()
            self._caught_up.clear()
            while not self._stopping.is_set():
                message = consumer.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if message.topic() == self.queue_topic:
                            queue_partitions.discard(message.partition())
                            if not queue_partitions:
                                self._caught_up.set()
                    elif error.fatal():
                        raise RuntimeError(error.str())
                    continue
                self._dispatch(message.topic(), update_of(message.topic(), message.headers(), message.value(), self.queue_topic))
        finally:
            consumer.close()

    def _dispatch(self, topic: str, update: Update | None) -> None:
        self.metrics.message(topic, "read" if update else "ignored")
        if update is None:
            return
        with self._lock:
            if update.queue == "held":
                self._held.pop(update.image_id, None)
                self._held[update.image_id] = None  # to the end: held again, newest
            elif update.queue == "released":
                if update.image_id in self._held:
                    del self._held[update.image_id]
                else:
                    update = replace(update, queue="")  # it was not in the queue: the queue did not change
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.offer(update)
