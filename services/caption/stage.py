"""The caption stage: ``images.uploaded`` micro-batches in, ``captions.generated`` out.

Delivery guarantee: at-least-once with idempotent outputs. For each batch the
caption records are written to S3 and every ``captions.generated`` event is
acknowledged by the broker before the input offsets are committed. A crash in
between makes the batch run again: the caption record of an image already
captioned by the same model version is reused (no second inference), the event
is produced again with the same content, and downstream stages are idempotent
per image id (moderation overwrites its record, indexing upserts and skips an
image it already indexed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from confluent_kafka import Message

from captioner.keywords import hashtags
from captioner.vocabulary import LANGUAGES
from captioning_common.events import (
    EnvelopeError,
    caption_to_dict,
    decode_expected,
    findings_to_dict,
    iso,
    set_findings,
    timestamp_from_iso,
    timestamp_now,
)
from captioning_common.kafka.producer import EventProducer
from captioning_common.metrics import PipelineMetrics
from captioning_common.records import ImageRecords, record_key
from captioning_common.stage import DeadLetters
from captioning_common.storage import read_failure
from captioning_events.v1.caption_pb2 import Caption, CaptionGenerated, CaptionTimings
from captioning_events.v1.common_pb2 import ModelInfo, ObjectRef
from captioning_events.v1.image_pb2 import ImageUploaded
from services.caption.triton_captioner import CaptionRejected, TritonCaptioner

log = logging.getLogger(__name__)

OUTPUT_TOPIC = "captions.generated"


@dataclass
class _Item:
    record: Message
    event: ImageUploaded
    image: bytes = b""
    captions: list[Caption] = field(default_factory=list)
    findings: dict = field(default_factory=dict)
    fetch_ms: float = 0.0
    inference_ms: float = 0.0
    reused: dict | None = None
    failure: Future | None = None


class CaptionWorker:
    """Captions each micro-batch through Triton; dead-letters what can never succeed.

    Transient failures (S3 or Triton unreachable, timeouts) raise out of ``handle``,
    so the consumer rewinds and retries the whole batch after a backoff. S3 calls run
    on the event loop's default executor, whose size bounds their concurrency.
    """

    def __init__(
        self,
        captioner: TritonCaptioner,
        records: ImageRecords,
        producer: EventProducer,
        metrics: PipelineMetrics,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.captioner = captioner
        self.records = records
        self.store = records.store
        self.producer = producer
        self.metrics = metrics
        self.dead_letters = DeadLetters("caption", producer, records, metrics)
        self._loop = loop
        self._model: ModelInfo | None = None

    def handle(self, batch: list[Message]) -> None:
        """Process one micro-batch to the end (every output acknowledged), or raise."""
        self._loop.run_until_complete(self.process(batch))

    async def process(self, batch: list[Message]) -> None:
        """Caption a batch; returns once every caption event and dead letter is acknowledged."""
        started = time.perf_counter()
        self.metrics.observe_batch(len(batch))
        if self._model is None:
            self._model = ModelInfo(name=self.captioner.model_name, version=await self.captioner.served_version())
        pending = []
        items = []
        for record in batch:
            try:
                event = decode_expected(record.headers(), record.value(), ImageUploaded)
            except EnvelopeError as exc:
                pending.append(self.dead_letters.send(record, "invalid_event", str(exc)))
                continue
            items.append(_Item(record, event))

        with self.metrics.time_stage("fetch"):
            await asyncio.gather(*(self._fetch(item) for item in items))
        fresh = [item for item in items if item.reused is None]
        with self.metrics.time_stage("inference"):
            outcomes = await asyncio.gather(*(self._caption(item) for item in fresh), return_exceptions=True)
        for item, outcome in zip(fresh, outcomes):
            if isinstance(outcome, CaptionRejected):
                item.failure = await asyncio.to_thread(self.dead_letters.send, item.record, "image_rejected", str(outcome), item.event.image_id)
            elif isinstance(outcome, BaseException):
                raise outcome
        pending.extend(item.failure for item in items if item.failure is not None)
        done = [item for item in items if item.reused is not None or item.captions]
        pending += await asyncio.gather(*(self._publish(item, len(batch), started) for item in done))
        with self.metrics.time_stage("produce"):
            await asyncio.gather(*(asyncio.wrap_future(future) for future in pending))
        for item in done:
            self.metrics.message(item.record.topic(), "reused" if item.reused is not None else "ok")

    async def _fetch(self, item: _Item) -> None:
        image_id = item.event.image_id
        existing = await asyncio.to_thread(self.records.get, image_id, "captions")
        if existing and existing.get("model") == {"name": self._model.name, "version": self._model.version}:
            item.reused = existing
            return
        start = time.perf_counter()
        try:
            item.image = await asyncio.to_thread(self.store.get, item.event.object.key)
        except KeyError as exc:
            code, reason = read_failure(item.event.object.bucket, exc)
            item.failure = await asyncio.to_thread(self.dead_letters.send, item.record, code, reason, image_id)
            return
        item.fetch_ms = (time.perf_counter() - start) * 1000

    async def _caption(self, item: _Item) -> None:
        if not item.image:
            return
        languages = [language for language in item.event.languages if language] or list(LANGUAGES)
        start = time.perf_counter()
        results = await asyncio.gather(*(self.captioner.caption(item.image, language) for language in languages))
        item.inference_ms = (time.perf_counter() - start) * 1000
        item.captions = [
            Caption(language=r.language, text=r.text, keywords=r.keywords, hashtags=hashtags(r.keywords), score=r.score) for r in results
        ]
        first = results[0]  # tags, objects and text are the same in every language
        item.findings = {"tags": first.tags, "objects": first.objects, "text_lines": first.text_lines, "route": first.route}

    async def _publish(self, item: _Item, batch_size: int, started: float) -> Future:
        event = self._event(item, batch_size, started)
        if item.reused is None:
            await asyncio.to_thread(self.records.put, item.event.image_id, "captions", caption_record(event))
        return self.producer.produce(OUTPUT_TOPIC, event, key=item.event.image_id)

    def _event(self, item: _Item, batch_size: int, started: float) -> CaptionGenerated:
        image_id = item.event.image_id
        if item.reused is not None:
            return caption_event(item.reused)
        event = CaptionGenerated(
            image_id=image_id,
            image=item.event.object,
            captions=item.captions,
            model=self._model,
            timings=CaptionTimings(
                fetch_ms=item.fetch_ms,
                inference_ms=item.inference_ms,
                total_ms=(time.perf_counter() - started) * 1000,
                batch_size=batch_size,
            ),
            record=ObjectRef(bucket=self.store.bucket, key=record_key(image_id, "captions")),
            generated_at=timestamp_now(),
        )
        return set_findings(event, item.findings)


def caption_record(event: CaptionGenerated) -> dict:
    """The JSON caption record of a CaptionGenerated event."""
    return {
        "image_id": event.image_id,
        "image": {"bucket": event.image.bucket, "key": event.image.key},
        "captions": [caption_to_dict(caption) for caption in event.captions],
        "model": {"name": event.model.name, "version": event.model.version},
        "timings": {
            "fetch_ms": event.timings.fetch_ms,
            "inference_ms": event.timings.inference_ms,
            "total_ms": event.timings.total_ms,
            "batch_size": event.timings.batch_size,
        },
        "record": {"bucket": event.record.bucket, "key": event.record.key},
        "generated_at": iso(event.generated_at),
        **findings_to_dict(event),
    }


def caption_event(record: dict) -> CaptionGenerated:
    """The CaptionGenerated event of a JSON caption record."""
    event = CaptionGenerated(
        image_id=record["image_id"],
        image=ObjectRef(**record["image"]),
        captions=[Caption(**caption) for caption in record["captions"]],
        model=ModelInfo(**record["model"]),
        timings=CaptionTimings(**record["timings"]),
        record=ObjectRef(**record["record"]),
        generated_at=timestamp_from_iso(record["generated_at"]),
    )
    return set_findings(event, record)
