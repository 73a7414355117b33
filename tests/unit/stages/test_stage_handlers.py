"""Every stage's handler against fakes of its ports (S3, Triton, the index, the intake): no servers."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from captioning_common.kafka.topics import StageTopics
from captioning_common.metrics import PipelineMetrics
from captioning_common.records import RecordConflict
from captioning_common.reviews import sign_decision
from captioning_common.stage import Inbound, RetryPolicy, StageRuntime
from captioning_events.v1.caption_pb2 import Caption, CaptionGenerated
from captioning_events.v1.common_pb2 import ModelInfo, ObjectRef
from captioning_events.v1.image_pb2 import ImageSubmitted, ImageUploaded
from captioning_events.v1.index_pb2 import IndexOperation
from captioning_events.v1.moderation_pb2 import ModerationVerdict, ReviewDecision, Verdict
from services.caption.stage import CaptionStage
from services.caption.triton_captioner import CaptionRejected, LanguageCaption, ModelCaption
from services.indexing.stage import IndexingStage
from services.ingest.intake import Intake
from services.ingest.settings import IngestSettings
from services.ingest.submissions import SubmissionStage
from services.moderation.image_classifier import NoImageClassifier
from services.moderation.settings import ModerationSettings
from services.moderation.stage import ModerationStage, verdict_record
from tests.unit.stages.fakes import FakeConsumer, FakeMessage, FakeProducer, fake_records, image_id_of

KEY = "signing-key"


def inbound(event, topic: str, offset: int = 0) -> Inbound:
    return Inbound(event, getattr(event, "image_id", ""), topic, 0, offset)


def png(shade: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 40, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- caption ----------------------------------------------------------------------------------------


class FakeCaptioner:
    model_name = "captioner"

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, list[str]]] = []
        self.rejected: set[bytes] = set()

    async def served_version(self) -> str:
        return "2"

    async def caption(self, image: bytes, languages: list[str]) -> ModelCaption:
        self.calls.append((image, languages))
        if image in self.rejected:
            raise CaptionRejected("cannot decode")
        return ModelCaption([LanguageCaption(language, f"a cat ({language})", ["cat"], 0.9) for language in languages], [], [], [], "real_world")


@pytest.fixture
def caption():
    records = fake_records([])
    captioner = FakeCaptioner()
    stage = CaptionStage(captioner, records, StageTopics("caption"), PipelineMetrics("caption"), asyncio.new_event_loop(), 1000, lambda: True)
    return stage, captioner, records


def upload(records, name: str, data: bytes | None) -> ImageUploaded:
    image_id = image_id_of(name)
    if data is not None:
        records.store.put(f"originals/{image_id}", data)
    return ImageUploaded(image_id=image_id, object=ObjectRef(bucket="test", key=f"originals/{image_id}"), languages=["en", "ko"])


def test_caption_two_copies_of_an_image_in_a_batch_are_captioned_once_with_one_event(caption) -> None:
    stage, captioner, records = caption
    data = png()
    event = upload(records, "a", data)
    first, second = stage.handle([inbound(event, "images.uploaded", 0), inbound(event, "images.uploaded", 1)])
    assert first is second and captioner.calls == [(data, ["en", "ko"])]  # one call per image with every language, not per copy
    (emit,) = first.events
    assert emit.topic == "captions.generated" and [c.text for c in emit.event.captions] == ["a cat (en)", "a cat (ko)"]
    assert first.records[0].stage == "captions"


def test_caption_reuses_the_record_of_the_same_model_version(caption) -> None:
    stage, captioner, records = caption
    event = upload(records, "a", png())
    (done,) = stage.handle([inbound(event, "images.uploaded")])
    records.put(event.image_id, "captions", done.records[0].body)
    (again,) = stage.handle([inbound(event, "images.uploaded")])
    assert again.result == "reused" and not again.records and len(captioner.calls) == 1
    assert again.events[0].event.generated_at == done.events[0].event.generated_at


@pytest.mark.parametrize(
    "data, code",
    [(None, "object_missing"), (b"", "object_empty"), (b"x" * 1001, "object_too_large"), (b"not an image", "image_rejected")],
)
def test_caption_dead_letters_an_original_that_can_never_be_captioned(caption, data, code) -> None:
    stage, captioner, records = caption
    captioner.rejected.add(b"not an image")
    (outcome,) = stage.handle([inbound(upload(records, "a", data), "images.uploaded")])
    assert outcome.failure is not None and outcome.failure.code == code and not outcome.events


# --- moderation -------------------------------------------------------------------------------------


@pytest.fixture
def moderation():
    records = fake_records([])
    settings = ModerationSettings(image_classifier="none")
    stage = ModerationStage(settings, NoImageClassifier(), records, StageTopics("moderation"), PipelineMetrics("moderation"), KEY)
    return stage, records


def generated(records, name: str, at: int, text: str = "a cat on a sofa") -> CaptionGenerated:
    image_id = image_id_of(name)
    records.store.put(f"originals/{image_id}", png())
    event = CaptionGenerated(
        image_id=image_id, image=ObjectRef(bucket="test", key=f"originals/{image_id}"), captions=[Caption(language="en", text=text)],
        model=ModelInfo(name="captioner", version="2"),
    )
    event.generated_at.FromSeconds(at)
    return event


def decision(image_id: str, verdict=Verdict.VERDICT_APPROVE, reviewer: str = "alice", key: str | None = KEY) -> ReviewDecision:
    event = ReviewDecision(image_id=image_id, verdict=verdict, reviewer=reviewer)
    if key:
        event.signature = sign_decision(event, key)
    return event


def held(stage, records, name: str) -> str:
    """An image whose verdict is REVIEW, as stored."""
    event = generated(records, name, 1)
    verdict = ModerationVerdict(image_id=event.image_id, image=event.image, verdict=Verdict.VERDICT_REVIEW, captions=event.captions, caption_model=event.model)
    records.put(event.image_id, "moderation", verdict_record(verdict, "1970-01-01T00:00:01+00:00"))
    return event.image_id


def test_moderation_a_reviewers_decision_survives_new_captions_of_the_image(moderation) -> None:
    stage, records = moderation
    image_id = held(stage, records, "a")
    (approved,) = stage.handle([inbound(decision(image_id), "moderation.decisions")])
    records.put(image_id, "moderation", approved.records[0].body)
    # a replay, a new model version, a second copy or a zombie brings captions generated later
    (again,) = stage.handle([inbound(generated(records, "a", 99, "a rude caption"), "captions.generated")])
    assert again.result == "reviewer_kept" and not again.records
    assert again.events[0].event.verdict == Verdict.VERDICT_APPROVE and again.events[0].event.reviewer == "alice"


@pytest.mark.parametrize("key", [None, "another-key"])
def test_moderation_refuses_a_decision_that_did_not_come_through_the_review_api(moderation, key) -> None:
    stage, records = moderation
    image_id = held(stage, records, "a")
    (outcome,) = stage.handle([inbound(decision(image_id, key=key), "moderation.decisions")])
    assert outcome.failure is not None and outcome.failure.code == "invalid_signature"
    forged = decision(image_id)
    forged.reviewer = "mallory"
    (outcome,) = stage.handle([inbound(forged, "moderation.decisions")])
    assert outcome.failure.code == "invalid_signature"


def test_moderation_applies_the_events_of_one_image_in_order_within_a_batch(moderation) -> None:
    stage, records = moderation
    image_id = held(stage, records, "a")
    outcomes = stage.handle([inbound(decision(image_id), "moderation.decisions", 0), inbound(generated(records, "a", 99), "captions.generated", 1)])
    assert [o.result for o in outcomes] == ["review_approve", "reviewer_kept"]
    assert sum(len(o.records) for o in outcomes) == 1 and outcomes[1].records[0].body["reviewer"] == "alice"


def test_moderation_a_racing_writer_cannot_override_the_reviewer(moderation) -> None:
    """A zombie moderates new captions while a reviewer's decision lands: its conditional write fails."""
    stage, records = moderation
    image_id = held(stage, records, "a")
    (zombie,) = stage.handle([inbound(generated(records, "a", 99), "captions.generated")])
    (approved,) = stage.handle([inbound(decision(image_id), "moderation.decisions")])
    records.put(image_id, "moderation", approved.records[0].body)
    change = zombie.records[0]
    with pytest.raises(RecordConflict):
        records.put_if(change.image_id, change.stage, change.body, change.version)
    assert records.get(image_id, "moderation")["reviewer"] == "alice"


# --- indexing ---------------------------------------------------------------------------------------


class FakeIndex:
    class settings:  # noqa: N801 - mirrors IndexingSettings
        table = "captions_v2"

    def __init__(self) -> None:
        self.rows: dict[str, object] = {}
        self.version = 0

    def upsert(self, entries) -> int:
        self.rows.update({entry.image_id: entry for entry in entries})
        self.version += 1
        return self.version

    def delete(self, image_ids) -> int:
        for image_id in image_ids:
            self.rows.pop(image_id, None)
        self.version += 1
        return self.version


class AskedFolds:
    """Counts the stage's requests for a fold."""

    asked = 0

    def ask(self) -> None:
        self.asked += 1


@pytest.fixture
def indexing():
    records, index = fake_records([]), FakeIndex()
    return IndexingStage(index, AskedFolds(), records, StageTopics("indexing"), PipelineMetrics("indexing"), lambda: True, 4), index, records


def verdict_of(name: str, verdict=Verdict.VERDICT_APPROVE, at: int = 5, languages=("en", "ko")) -> ModerationVerdict:
    event = ModerationVerdict(image_id=image_id_of(name), image=ObjectRef(bucket="test", key="k"), verdict=verdict,
                              captions=[Caption(language=language, text=f"a cat {language}") for language in languages])
    event.moderated_at.FromSeconds(at)
    return event


def test_indexing_upserts_then_announces_then_marks(indexing) -> None:
    stage, index, _ = indexing
    (outcome,) = stage.handle([inbound(verdict_of("a"), "captions.moderated")])
    assert image_id_of("a") in index.rows
    assert outcome.events[0].event.operation == IndexOperation.INDEX_OPERATION_UPSERT and outcome.events[0].topic == "index.updated"
    assert not outcome.records and outcome.marks[0].stage == "index" and outcome.marks[0].body["index_version"] == 1


def test_indexing_asks_for_a_fold_after_each_upsert_only(indexing) -> None:
    stage, index, _ = indexing
    stage.handle([inbound(verdict_of(name), "captions.moderated", offset) for offset, name in enumerate("ab")])
    stage.handle([inbound(verdict_of("c", Verdict.VERDICT_REJECT), "captions.moderated", 2)])
    assert stage._folds.asked == 1


def test_indexing_removes_a_rejected_image_even_without_its_mark(indexing) -> None:
    """A crash between the upsert and the mark, then a REJECT: the image must leave the table."""
    stage, index, _ = indexing
    stage.handle([inbound(verdict_of("a"), "captions.moderated")])  # upserted; its mark was never written
    (outcome,) = stage.handle([inbound(verdict_of("a", Verdict.VERDICT_REJECT, at=6), "captions.moderated")])
    assert image_id_of("a") not in index.rows and outcome.marks[0].body is None


def test_indexing_announces_a_removal_of_an_indexed_image_and_the_latest_verdict_wins(indexing) -> None:
    stage, index, records = indexing
    records.put(image_id_of("a"), "index", {"moderated_at": "x"})
    outcomes = stage.handle([inbound(verdict_of("a"), "captions.moderated", 0), inbound(verdict_of("a", Verdict.VERDICT_REVIEW, 6), "captions.moderated", 1)])
    assert [o.result for o in outcomes] == ["superseded", "removed"]
    assert outcomes[1].events[0].event.operation == IndexOperation.INDEX_OPERATION_DELETE and not index.rows


def test_indexing_dead_letters_captions_in_a_language_the_index_does_not_hold(indexing) -> None:
    stage, index, _ = indexing
    (outcome,) = stage.handle([inbound(verdict_of("a", languages=("en", "fr")), "captions.moderated")])
    assert outcome.failure.code == "unsupported_language" and "fr" in outcome.failure.message and not index.rows


# --- ingest (claim checks) --------------------------------------------------------------------------


@pytest.fixture
def submissions():
    log: list = []
    records, producer = fake_records(log), FakeProducer(log)
    settings = IngestSettings(max_bytes=10_000)
    intake = Intake(records, producer)
    return SubmissionStage(settings, intake, PipelineMetrics("ingest")), records, producer


@pytest.mark.parametrize(
    "key, data, code",
    [
        ("incoming/" + "k" * 1100, None, "invalid_key"),
        ("index/captions_v2/data.lance", b"x", "invalid_key"),
        ("records/abc/received.json", b"x", "invalid_key"),
        ("incoming/missing.png", None, "object_missing"),
        ("incoming/large.png", b"x" * 10_001, "file_too_large"),
        ("incoming/corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "corrupt_image"),
    ],
)
def test_submissions_dead_letter_what_can_never_be_accepted(submissions, key, data, code) -> None:
    stage, records, producer = submissions
    if data is not None:
        records.store.put(key, data)
    (outcome,) = stage.handle([inbound(ImageSubmitted(object=ObjectRef(bucket="test", key=key)), "images.submitted")])
    assert outcome.failure is not None and outcome.failure.code == code and outcome.failure.image_id == ""
    assert not producer.sent


def test_submissions_accept_an_image_once(submissions) -> None:
    stage, records, producer = submissions
    records.store.put("incoming/a.png", png())
    event = ImageSubmitted(object=ObjectRef(bucket="test", key="incoming/a.png"))
    outcomes = stage.handle([inbound(event, "images.submitted", 0), inbound(event, "images.submitted", 1)])
    assert [o.result for o in outcomes] == ["ok", "duplicate"]
    assert [topic for topic, _, _ in producer.sent] == ["images.uploaded"]


def test_every_stage_runs_under_the_runtime_with_its_declared_inputs(caption) -> None:
    stage, _, records = caption
    log: list = []
    producer = FakeProducer(log)
    runtime = StageRuntime(stage, StageTopics("caption").inputs, FakeConsumer(log), producer, records, PipelineMetrics("c"), RetryPolicy())
    event = upload(records, "a", png())
    assert runtime.process([FakeMessage("images.uploaded", 0, event, key=event.image_id)])
    assert [topic for topic, _, _ in producer.sent] == ["captions.generated"]
    assert records.get(event.image_id, "captions")["model"] == {"name": "captioner", "version": "2"}
