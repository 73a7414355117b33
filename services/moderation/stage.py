"""The moderation stage: screens each image and its captions, and applies review decisions.

Inputs: ``captions.generated`` (new captions) and ``moderation.decisions`` (a human's
decision on an item held for review). Outputs: every verdict to ``captions.moderated``,
REVIEW verdicts also to ``moderation.review``. The verdict is written to the image's
``moderation`` record before it is produced. A replayed ``captions.generated`` event
whose captions were already moderated re-emits the stored verdict, so a replay never
overrides a reviewer's decision.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from confluent_kafka import Message

from captioning_common.events import (
    EnvelopeError,
    caption_to_dict,
    copy_findings,
    decode_event,
    findings_to_dict,
    iso,
    set_findings,
    timestamp_from_iso,
    timestamp_now,
)
from captioning_common.kafka.producer import EventProducer
from captioning_common.logs import image_context
from captioning_common.metrics import PipelineMetrics
from captioning_common.records import ImageRecords
from captioning_common.stage import DeadLetters, by_key
from captioning_common.storage import read_failure
from captioning_events.v1.caption_pb2 import Caption, CaptionGenerated
from captioning_events.v1.common_pb2 import ModelInfo, ObjectRef
from captioning_events.v1.moderation_pb2 import ModerationReason, ModerationVerdict, ReviewDecision, Verdict
from services.moderation.image_classifier import ImageClassifier
from services.moderation.policy import decide
from services.moderation.settings import ModerationSettings

log = logging.getLogger(__name__)

INPUT_TOPICS = ("captions.generated", "moderation.decisions")
VERDICTS_TOPIC = "captions.moderated"
REVIEW_TOPIC = "moderation.review"
VERDICT_NAMES = {Verdict.VERDICT_APPROVE: "approve", Verdict.VERDICT_REVIEW: "review", Verdict.VERDICT_REJECT: "reject"}
_VERDICT_VALUES = {name: value for value, name in VERDICT_NAMES.items()}


class ModerationWorker:
    """Handles batches of caption events and review decisions."""

    def __init__(
        self,
        settings: ModerationSettings,
        classifier: ImageClassifier,
        records: ImageRecords,
        producer: EventProducer,
        metrics: PipelineMetrics,
    ) -> None:
        self.settings = settings
        self.classifier = classifier
        self.records = records
        self.store = records.store
        self.producer = producer
        self.metrics = metrics
        self.dead_letters = DeadLetters("moderation", producer, records, metrics)
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="moderate")

    def handle(self, batch: list[Message]) -> None:
        """Moderate a batch; returns once every output is acknowledged, raises on transient failures.

        Images are moderated concurrently; the records of one image, in order.
        """
        self.metrics.observe_batch(len(batch))
        pending = [future for group in self._pool.map(self._handle_group, by_key(batch)) for future in group]
        with self.metrics.time_stage("produce"):
            for future in pending:
                future.result()

    def _handle_group(self, records: list[Message]) -> list[Future]:
        pending: list[Future] = []
        for record in records:
            try:
                _, event = decode_event(record.headers(), record.value())
            except EnvelopeError as exc:
                pending.append(self.dead_letters.send(record, "invalid_event", str(exc)))
                continue
            with image_context(getattr(event, "image_id", None)):
                if isinstance(event, CaptionGenerated):
                    pending += self._moderate(record, event)
                elif isinstance(event, ReviewDecision):
                    pending += self._apply_decision(record, event)
                else:
                    pending.append(self.dead_letters.send(record, "invalid_event", f"unexpected event {type(event).__name__}"))
        return pending

    def _moderate(self, record: Message, event: CaptionGenerated) -> list[Future]:
        generated_at = iso(event.generated_at)
        existing = self.records.get(event.image_id, "moderation")
        if existing is not None and existing.get("caption_generated_at") == generated_at:
            self.metrics.message(record.topic(), "replayed")
            return self._publish(verdict_event(existing))
        try:
            image = self.store.get(event.image.key)
        except KeyError as exc:
            return [self.dead_letters.send(record, *read_failure(event.image.bucket, exc), event.image_id)]
        try:
            with self.metrics.time_stage("image_classifier"):
                findings = self.classifier.classify(image)
        except ValueError as exc:
            return [self.dead_letters.send(record, "image_undecodable", str(exc), event.image_id)]
        with self.metrics.time_stage("text_policy"):
            people = [(b.x, b.y, b.width, b.height) for o in event.objects if o.label == "person" for b in o.boxes]
            decision = decide(list(event.captions), findings, self.settings, people)
        verdict = ModerationVerdict(
            image_id=event.image_id,
            image=event.image,
            verdict=decision.verdict,
            reasons=decision.reasons,
            captions=decision.captions,
            caption_model=event.model,
            moderated_at=timestamp_now(),
        )
        copy_findings(event, verdict)
        self.records.put(event.image_id, "moderation", verdict_record(verdict, generated_at))
        self.metrics.message(record.topic(), VERDICT_NAMES[decision.verdict])
        return self._publish(verdict)

    def _apply_decision(self, record: Message, decision: ReviewDecision) -> list[Future]:
        if decision.verdict not in (Verdict.VERDICT_APPROVE, Verdict.VERDICT_REJECT):
            return [self.dead_letters.send(record, "invalid_decision", "a review decision must approve or reject", "")]
        existing = self.records.get(decision.image_id, "moderation")
        if existing is not None and (existing["reviewer"], existing["verdict"]) == (decision.reviewer, VERDICT_NAMES[decision.verdict]):
            self.metrics.message(record.topic(), "replayed")  # this decision was applied already
            return self._publish(verdict_event(existing))
        if existing is None or existing["verdict"] != "review":
            return [self.dead_letters.send(record, "not_in_review", f"image {decision.image_id} is not held for review", "")]
        verdict = verdict_event(existing)
        verdict.verdict = decision.verdict
        verdict.reviewer = decision.reviewer
        verdict.reasons.append(ModerationReason(code="review.decision", detail=decision.note or VERDICT_NAMES[decision.verdict], score=1.0))
        verdict.moderated_at.CopyFrom(timestamp_now())
        self.records.put(decision.image_id, "moderation", verdict_record(verdict, existing["caption_generated_at"]))
        self.metrics.message(record.topic(), f"review_{VERDICT_NAMES[decision.verdict]}")
        return self._publish(verdict)

    def _publish(self, verdict: ModerationVerdict) -> list[Future]:
        futures = [self.producer.produce(VERDICTS_TOPIC, verdict, key=verdict.image_id)]
        if verdict.verdict == Verdict.VERDICT_REVIEW:
            futures.append(self.producer.produce(REVIEW_TOPIC, verdict, key=verdict.image_id))
        return futures


def verdict_record(verdict: ModerationVerdict, caption_generated_at: str) -> dict:
    """The JSON moderation record of a verdict."""
    return {
        "image_id": verdict.image_id,
        "image": {"bucket": verdict.image.bucket, "key": verdict.image.key},
        "verdict": VERDICT_NAMES[verdict.verdict],
        "reasons": [{"code": r.code, "detail": r.detail, "score": round(r.score, 6)} for r in verdict.reasons],
        "captions": [caption_to_dict(caption) for caption in verdict.captions],
        "caption_model": {"name": verdict.caption_model.name, "version": verdict.caption_model.version},
        "caption_generated_at": caption_generated_at,
        "moderated_at": iso(verdict.moderated_at),
        "reviewer": verdict.reviewer,
        **findings_to_dict(verdict),
    }


def verdict_event(record: dict) -> ModerationVerdict:
    """The ModerationVerdict event of a JSON moderation record."""
    verdict = ModerationVerdict(
        image_id=record["image_id"],
        image=ObjectRef(**record["image"]),
        verdict=_VERDICT_VALUES[record["verdict"]],
        reasons=[ModerationReason(**reason) for reason in record["reasons"]],
        captions=[Caption(**caption) for caption in record["captions"]],
        caption_model=ModelInfo(**record["caption_model"]),
        moderated_at=timestamp_from_iso(record["moderated_at"]),
        reviewer=record["reviewer"],
    )
    return set_findings(verdict, record)
