"""The stage runtime against fakes of Kafka and S3: order of effects, dead letters, bounded retries."""

from __future__ import annotations

import pytest

from captioning_common.metrics import PipelineMetrics
from captioning_common.stage import Emit, Outcome, RecordChange, RetryPolicy, StageRuntime
from captioning_events.v1.common_pb2 import ObjectRef
from captioning_events.v1.dead_letter_pb2 import DeadLetter
from captioning_events.v1.image_pb2 import ImageUploaded
from tests.unit.stages.fakes import FakeConsumer, FakeError, FakeMessage, FakeProducer, fake_records, image_id_of

TOPIC = "images.uploaded"


def uploaded(name: str) -> ImageUploaded:
    image_id = image_id_of(name)
    return ImageUploaded(image_id=image_id, object=ObjectRef(bucket="test", key=f"originals/{image_id}"))


class ScriptedStage:
    """Emits one event, writes one record and one mark per input; ``poison`` ids always raise."""

    name = "test"

    def __init__(self) -> None:
        self.poison: set[str] = set()
        self.healthy = True
        self.calls: list[list[str]] = []

    def dependencies(self):
        return {"dependency": lambda: self.healthy}

    def handle(self, batch):
        ids = [inbound.image_id for inbound in batch]
        self.calls.append(ids)
        if self.poison & set(ids):
            raise RuntimeError("this image always breaks the handler")
        return [
            Outcome(
                records=[RecordChange(i, "captions", {"n": 1})],
                events=[Emit("captions.generated", inbound.event, i)],
                marks=[RecordChange(i, "index", {"done": True})],
            )
            for i, inbound in zip(ids, batch)
        ]


@pytest.fixture
def world():
    log: list = []
    stage = ScriptedStage()
    producer, consumer, records = FakeProducer(log), FakeConsumer(log), fake_records(log)
    runtime = StageRuntime(
        stage, {TOPIC: ImageUploaded}, consumer, producer, records, PipelineMetrics("test"), RetryPolicy(max_attempts=3, backoff_s=0.001)
    )
    return runtime, stage, producer, consumer, records, log


def messages(*names: str) -> list[FakeMessage]:
    return [FakeMessage(TOPIC, offset, uploaded(name), key=image_id_of(name)) for offset, name in enumerate(names)]


def test_effects_happen_in_order_records_events_marks_then_commit(world) -> None:
    runtime, _, _, consumer, _, log = world
    assert runtime.process(messages("a", "b"))
    kinds = [entry[0] if entry[0] != "put" else ("mark" if entry[1].endswith("index.json") else "record") for entry in log]
    assert kinds == ["record", "record", "produce", "produce", "mark", "mark", "commit"]
    assert consumer.commits == {(TOPIC, 0): 2}


def test_an_unacknowledged_event_leaves_no_mark_and_no_commit(world) -> None:
    runtime, stage, producer, consumer, records, log = world
    producer.failing.add("captions.generated")
    stage.healthy = False  # an outage: nothing is counted, everything is read again
    assert not runtime.process(messages("a"))
    assert not any(entry[0] == "put" and entry[1].endswith("index.json") for entry in log)
    assert consumer.commits == {(TOPIC, 0): 0} and consumer.seeks == [{(TOPIC, 0): 0}]


def test_a_message_that_keeps_failing_is_dead_lettered_and_the_partition_moves_on(world) -> None:
    runtime, stage, producer, consumer, records, _ = world
    stage.poison.add(image_id_of("b"))
    batch = messages("a", "b", "c")
    assert not runtime.process(batch)  # a settles, b fails once (c waits behind it), commit up to b
    assert consumer.commits[(TOPIC, 0)] == 1 and consumer.seeks[-1] == {(TOPIC, 0): 1}
    assert not runtime.process(batch[1:])  # b: attempt 2
    assert runtime.process(batch[1:])  # b: attempt 3 -> dead-lettered; c settles
    assert consumer.commits[(TOPIC, 0)] == 3
    letters = [(topic, event) for topic, event, _ in producer.sent if topic == f"{TOPIC}.dlq"]
    assert len(letters) == 1
    letter: DeadLetter = letters[0][1]
    assert (letter.error_code, letter.attempts, letter.source_offset) == ("retries_exhausted", 3, 1)
    assert "always breaks" in letter.error_message
    assert records.get(image_id_of("b"), "failure")["code"] == "retries_exhausted"
    assert records.get(image_id_of("c"), "index") == {"done": True}


def test_failures_during_an_outage_are_not_counted(world) -> None:
    runtime, stage, producer, consumer, _, _ = world
    stage.poison.add(image_id_of("a"))
    stage.healthy = False
    for _ in range(10):
        assert not runtime.process(messages("a"))
    assert not [topic for topic, _, _ in producer.sent if topic.endswith(".dlq")]
    stage.healthy = True
    stage.poison.clear()
    assert runtime.process(messages("a"))


@pytest.mark.parametrize(
    "message, reason",
    [
        (FakeMessage(TOPIC, 0, value=b"garbage", headers=[]), "ce_"),
        (FakeMessage(TOPIC, 0, DeadLetter(stage="x"), key="k"), "carries ImageUploaded, not DeadLetter"),
        (FakeMessage(TOPIC, 0, ImageUploaded(image_id="../../index/x"), key="k"), "not 64 lowercase hex"),
        (FakeMessage(TOPIC, 0, uploaded("a"), key="k", subject=image_id_of("b")), "ce_subject"),
        (FakeMessage(TOPIC, 0, error=FakeError("Broker: Message corrupt")), "corrupt"),
    ],
)
def test_messages_that_can_never_succeed_are_dead_lettered_at_once(world, message, reason) -> None:
    runtime, stage, producer, consumer, _, _ = world
    assert runtime.process([message])
    assert stage.calls == []
    ((topic, letter, _),) = producer.sent
    assert topic == f"{TOPIC}.dlq" and letter.error_code in ("invalid_event", "consumer_error") and reason in letter.error_message
    assert consumer.commits == {(TOPIC, 0): 1}


def test_a_failure_outcome_writes_the_failure_record_then_the_dead_letter(world) -> None:
    runtime, stage, producer, _, records, log = world
    stage.handle = lambda batch: [Outcome.failed("object_missing", "no object") for _ in batch]
    assert runtime.process(messages("a"))
    assert records.get(image_id_of("a"), "failure")["code"] == "object_missing"
    order = [entry[0] for entry in log]
    assert order.index("put") < order.index("produce")
    assert [topic for topic, _, _ in producer.sent] == [f"{TOPIC}.dlq"]


def test_a_commit_refused_by_a_rebalance_reads_the_batch_again_until_it_is_committed(world) -> None:
    runtime, _, producer, consumer, _, _ = world
    consumer.refuse_commits = 1
    batch = messages("a", "b")
    assert not runtime.process(batch)
    assert consumer.commits == {} and consumer.seeks == [{(TOPIC, 0): 0}]
    assert runtime.process(batch)  # read again: idempotent effects, and this time committed
    assert consumer.commits == {(TOPIC, 0): 2}
