"""The moderation stage: screens each image and its captions, and applies review decisions.

Inputs: ``CaptionGenerated`` (new captions) and ``ReviewDecision`` (a reviewer's
decision, signed by the review API). Outputs: every verdict to ``captions.moderated``,
REVIEW verdicts also to the review queue. The verdict is written to the image's
``moderation`` record, conditionally on the version read, before it is produced.

A reviewer's decision is final: captions moderated again (a replay, a new model
version, a second copy of the image, a zombie consumer) re-emit the stored verdict,
and a conditional write makes a racing writer read the record again. A decision
without a valid signature never applies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from captioning_common.events import (
    caption_to_dict,
    copy_findings,
    findings_to_dict,
    iso,
    set_findings,
    timestamp_from_iso,
    timestamp_now,
)
from captioning_common.kafka.topics import StageTopics
from captioning_common.logs import image_context
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.records import ImageRecords
from captioning_common.reviews import verify_decision
from captioning_common.stage import Emit, Inbound, Outcome, RecordChange
from captioning_common.storage import read_failure
from captioning_events.v1.caption_pb2 import Caption, CaptionGenerated
from captioning_events.v1.common_pb2 import ModelInfo, ObjectRef
from captioning_events.v1.moderation_pb2 import ModerationReason, ModerationVerdict, ReviewDecision, Verdict
from services.moderation.image_classifier import ImageClassifier
from services.moderation.policy import decide
from services.moderation.profanity import bundled as profanity_model
from services.moderation.settings import ModerationSettings

log = logging.getLogger(__name__)

VERDICT_NAMES = {Verdict.VERDICT_APPROVE: "approve", Verdict.VERDICT_REVIEW: "review", Verdict.VERDICT_REJECT: "reject"}
_VERDICT_VALUES = {name: value for value, name in VERDICT_NAMES.items()}


@dataclass
class _State:
    """An image's moderation record as this batch sees it: as read, then as changed."""

    record: dict | None
    version: str
    changed: bool = False


class ModerationStage:
    """Moderates images concurrently; the events of one image in order."""

    name = "moderation"

    def __init__(
        self,
        settings: ModerationSettings,
        classifier: ImageClassifier,
        records: ImageRecords,
        topics: StageTopics,
        metrics: PipelineMetrics,
        signing_key: str,
    ) -> None:
        profanity_model()  # loaded now: a missing model file fails the service's start, not its first caption
        self.settings = settings
        self.classifier = classifier
        self.records = records
        self.store = records.store
        self.metrics = metrics
        self.signing_key = signing_key
        self.verdicts_topic = topics.output(ModerationVerdict)
        self.review_topic = topics.output(ModerationVerdict, role="review_queue")
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="moderate")

    def dependencies(self) -> dict[str, Check]:
        """The bucket (originals and records)."""
        return {"s3": self.store.reachable}

    def handle(self, batch: Sequence[Inbound]) -> list[Outcome]:
        """One outcome per event; raises on a transient failure."""
        groups: dict[str, list[int]] = {}
        for index, inbound in enumerate(batch):
            groups.setdefault(inbound.image_id, []).append(index)
        outcomes: list[Outcome | None] = [None] * len(batch)
        for group, results in zip(groups.values(), self._pool.map(lambda g: self._handle_image([batch[i] for i in g]), groups.values())):
            for index, outcome in zip(group, results):
                outcomes[index] = outcome
        return outcomes

    def _handle_image(self, events: list[Inbound]) -> list[Outcome]:
        """The outcomes of one image's events, in order; its record is written once, with the last change."""
        image_id = events[0].image_id
        with image_context(image_id):
            state = _State(*self.records.read(image_id, "moderation"))
            outcomes = []
            for inbound in events:
                if isinstance(inbound.event, CaptionGenerated):
                    outcomes.append(self._moderate(inbound.event, state))
                else:
                    outcomes.append(self._apply_decision(inbound.event, state))
        if state.changed:
            last = max(i for i, outcome in enumerate(outcomes) if outcome.failure is None)
            outcomes[last].records.append(RecordChange(image_id, "moderation", state.record, state.version))
        return outcomes

    def _moderate(self, event: CaptionGenerated, state: _State) -> Outcome:
        generated_at = iso(event.generated_at)
        existing = state.record
        if existing is not None and existing.get("reviewer"):
            return self._publish(verdict_event(existing), "reviewer_kept")  # a reviewer's decision is final
        if existing is not None and existing.get("caption_generated_at") == generated_at:
            return self._publish(verdict_event(existing), "replayed")
        try:
            image = self.store.get(event.image.key, max_bytes=self.settings.max_image_bytes)
        except KeyError as exc:
            return Outcome.failed(*read_failure(event.image.bucket, exc))
        try:
            with self.metrics.time_stage("image_classifier"):
                findings = self.classifier.classify(image)
        except ValueError as exc:
            return Outcome.failed("image_undecodable", str(exc))
        with self.metrics.time_stage("text_policy"):
            people = [(b.x, b.y, b.width, b.height) for o in event.objects if o.label == "person" for b in o.boxes]
            decision = decide(list(event.captions), findings, self.settings, people)
        verdict = ModerationVerdict(image_id=event.image_id, image=event.image, caption_model=event.model, moderated_at=timestamp_now())
        verdict.MergeFrom(ModerationVerdict(verdict=decision.verdict, reasons=decision.reasons, captions=decision.captions))
        copy_findings(event, verdict)
        state.record, state.changed = verdict_record(verdict, generated_at), True
        return self._publish(verdict, VERDICT_NAMES[decision.verdict])

    def _apply_decision(self, decision: ReviewDecision, state: _State) -> Outcome:
        if not self.signing_key or not verify_decision(decision, self.signing_key):
            return Outcome.failed("invalid_signature", "a review decision must come through the review API (signature missing or invalid)", "")
        if decision.verdict not in (Verdict.VERDICT_APPROVE, Verdict.VERDICT_REJECT):
            return Outcome.failed("invalid_decision", "a review decision must approve or reject", "")
        existing = state.record
        if existing is not None and (existing["reviewer"], existing["verdict"]) == (decision.reviewer, VERDICT_NAMES[decision.verdict]):
            return self._publish(verdict_event(existing), "replayed")  # this decision was applied already
        if existing is None or existing["verdict"] != "review":
            return Outcome.failed("not_in_review", f"image {decision.image_id} is not held for review", "")
        verdict = verdict_event(existing)
        verdict.verdict = decision.verdict
        verdict.reviewer = decision.reviewer
        verdict.reasons.append(ModerationReason(code="review.decision", detail=decision.note or VERDICT_NAMES[decision.verdict], score=1.0))
        verdict.moderated_at.CopyFrom(timestamp_now())
        state.record, state.changed = verdict_record(verdict, existing["caption_generated_at"]), True
        return self._publish(verdict, f"review_{VERDICT_NAMES[decision.verdict]}")

    def _publish(self, verdict: ModerationVerdict, result: str) -> Outcome:
        events = [Emit(self.verdicts_topic, verdict, verdict.image_id)]
        if verdict.verdict == Verdict.VERDICT_REVIEW:
            events.append(Emit(self.review_topic, verdict, verdict.image_id))
        return Outcome(events=events, result=result)


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
