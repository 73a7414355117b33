"""The caption stage: ``ImageUploaded`` events in, caption records and ``CaptionGenerated`` out.

Idempotent per image: an image whose caption record was made by the model version
Triton serves now is not captioned again; the stored record is emitted again. Two
copies of one image in a batch are captioned once and get the same event. An
original the store cannot give (missing, unreadable, too large, empty) or that
the model refuses is dead-lettered with its cause; a Triton or S3 failure raises,
so the runtime retries (and dead-letters a message that keeps failing while both
are healthy).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from captioner.keywords import hashtags
from captioner.vocabulary import LANGUAGES
from captioning_common.events import caption_to_dict, findings_to_dict, iso, set_findings, timestamp_from_iso, timestamp_now
from captioning_common.kafka.topics import StageTopics
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.records import ImageRecords, record_key
from captioning_common.stage import Emit, Inbound, Outcome, RecordChange
from captioning_common.storage import read_failure
from captioning_events.v1.caption_pb2 import Caption, CaptionGenerated, CaptionTimings
from captioning_events.v1.common_pb2 import ModelInfo, ObjectRef
from captioning_events.v1.image_pb2 import ImageUploaded
from services.caption.triton_captioner import CaptionRejected, TritonCaptioner


@dataclass
class _Image:
    """One distinct image of a batch and what was learnt about it."""

    event: ImageUploaded
    outcome: Outcome | None = None
    data: bytes = b""
    captions: list[Caption] = field(default_factory=list)
    findings: dict = field(default_factory=dict)
    fetch_ms: float = 0.0
    inference_ms: float = 0.0


class CaptionStage:
    """Captions each micro-batch through Triton; S3 calls run on the loop's default executor."""

    name = "caption"

    def __init__(
        self,
        captioner: TritonCaptioner,
        records: ImageRecords,
        topics: StageTopics,
        metrics: PipelineMetrics,
        loop: asyncio.AbstractEventLoop,
        max_image_bytes: int,
        triton_ready: Check,
    ) -> None:
        self.captioner = captioner
        self.records = records
        self.store = records.store
        self.metrics = metrics
        self.output = topics.output(CaptionGenerated)
        self.max_image_bytes = max_image_bytes
        self._loop = loop
        self._triton_ready = triton_ready
        self._model: ModelInfo | None = None

    def dependencies(self) -> dict[str, Check]:
        """Triton's captioner and the bucket."""
        return {"triton": self._triton_ready, "s3": self.store.reachable}

    def handle(self, batch: Sequence[Inbound[ImageUploaded]]) -> list[Outcome]:
        """One outcome per event; raises on a transient failure."""
        return self._loop.run_until_complete(self._handle(batch))

    async def _handle(self, batch: Sequence[Inbound[ImageUploaded]]) -> list[Outcome]:
        started = time.perf_counter()
        model = ModelInfo(name=self.captioner.model_name, version=await self.captioner.served_version())
        images = {inbound.image_id: _Image(inbound.event) for inbound in batch}
        with self.metrics.time_stage("fetch"):
            await asyncio.gather(*(self._fetch(image, model) for image in images.values()))
        fresh = [image for image in images.values() if image.outcome is None]
        with self.metrics.time_stage("inference"):
            await asyncio.gather(*(self._caption(image) for image in fresh))
        for image in fresh:
            if image.outcome is None:
                event = self._event(image, model, len(batch), started)
                image.outcome = Outcome(records=[RecordChange(event.image_id, "captions", caption_record(event))], events=[self._emit(event)])
        return [images[inbound.image_id].outcome for inbound in batch]

    async def _fetch(self, image: _Image, model: ModelInfo) -> None:
        image_id = image.event.image_id
        existing = await asyncio.to_thread(self.records.get, image_id, "captions")
        if existing and existing.get("model") == {"name": model.name, "version": model.version}:
            image.outcome = Outcome(events=[self._emit(caption_event(existing))], result="reused")
            return
        start = time.perf_counter()
        try:
            image.data = await asyncio.to_thread(self.store.get, image.event.object.key, max_bytes=self.max_image_bytes)
        except KeyError as exc:
            image.outcome = Outcome.failed(*read_failure(image.event.object.bucket, exc))
            return
        if not image.data:
            image.outcome = Outcome.failed("object_empty", f"s3://{image.event.object.bucket}/{image.event.object.key} has no bytes")
        image.fetch_ms = (time.perf_counter() - start) * 1000

    async def _caption(self, image: _Image) -> None:
        languages = list(dict.fromkeys(language for language in image.event.languages if language)) or list(LANGUAGES)
        start = time.perf_counter()
        try:
            result = await self.captioner.caption(image.data, languages)
        except CaptionRejected as exc:
            image.outcome = Outcome.failed("image_rejected", str(exc))
            return
        image.inference_ms = (time.perf_counter() - start) * 1000
        image.captions = [
            Caption(language=c.language, text=c.text, keywords=c.keywords, hashtags=hashtags(c.keywords), score=c.score) for c in result.captions
        ]
        image.findings = {"tags": result.tags, "objects": result.objects, "text_lines": result.text_lines, "route": result.route}

    def _emit(self, event: CaptionGenerated) -> Emit:
        return Emit(self.output, event, event.image_id)

    def _event(self, image: _Image, model: ModelInfo, batch_size: int, started: float) -> CaptionGenerated:
        image_id = image.event.image_id
        event = CaptionGenerated(
            image_id=image_id,
            image=image.event.object,
            captions=image.captions,
            model=model,
            timings=CaptionTimings(
                fetch_ms=image.fetch_ms,
                inference_ms=image.inference_ms,
                total_ms=(time.perf_counter() - started) * 1000,
                batch_size=batch_size,
            ),
            record=ObjectRef(bucket=self.store.bucket, key=record_key(image_id, "captions")),
            generated_at=timestamp_now(),
        )
        return set_findings(event, image.findings)


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
