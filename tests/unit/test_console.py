"""The web console without servers: who may call what, how records become live updates, the app's own answers."""

from __future__ import annotations

import asyncio
import stat

import pytest
from fastapi.testclient import TestClient

from captioning_common.events import encode_event
from captioning_common.kafka.replay import ReplayReport, position
from captioning_common.kafka.topics import load_topics
from captioning_common.metrics import PipelineMetrics
from captioning_common.settings import ServiceSettings
from captioning_events.v1.dead_letter_pb2 import DeadLetter
from captioning_events.v1.image_pb2 import ImageUploaded
from captioning_events.v1.index_pb2 import IndexOperation, IndexUpdated
from captioning_events.v1.moderation_pb2 import ModerationVerdict, Verdict
from localinfra.pipeline import PipelineService, local_operator_env
from localinfra.settings import InfraConfig, LocalInfraSettings
from services.console.access import ConsoleAccess
from services.console.api import create_app, view_showing
from services.console.feed import PipelineFeed, Subscriber, Update, feed_topics, update_of
from services.console.settings import ConsoleSettings

IMAGE = "ab" * 32
ACCESS = ConsoleAccess(["upload-key"], {"review-key": "rita"}, {"operate-key": "otto"})


@pytest.mark.parametrize(
    "method, path, key, status",
    [
        ("GET", "/api/session", "upload-key", None),
        ("GET", "/api/session", "operate-key", None),
        ("GET", "/api/session", "nope", 401),
        ("GET", "/api/session", None, 401),
        ("POST", "/api/images", "upload-key", None),
        ("POST", "/api/images", "review-key", 403),
        ("GET", f"/api/images/{IMAGE}", "review-key", None),
        ("GET", f"/api/images/{IMAGE}", "operate-key", 403),
        ("GET", "/api/search", "upload-key", None),
        ("GET", "/api/search", "review-key", 403),
        ("GET", "/api/events", "review-key", None),
        ("GET", "/api/review-queue", "review-key", None),
        ("GET", "/api/review-queue", "upload-key", 403),
        ("GET", "/api/review-queue", "operate-key", 403),
        ("POST", f"/api/reviews/{IMAGE}", "upload-key", 403),
        ("GET", "/api/dead-letters", "operate-key", None),
        ("POST", "/api/dead-letters/images.uploaded.dlq/replay", "review-key", 403),
        ("POST", "/api/dead-letters/images.uploaded.dlq/replay", "upload-key", 403),
    ],
)
def test_each_route_needs_its_kind_of_key(method: str, path: str, key: str | None, status: int | None) -> None:
    refusal = ACCESS.refusal(method, path, key)
    assert (refusal.status if refusal else None) == status


def test_identities_name_their_roles() -> None:
    assert ACCESS.identify("review-key").roles == ["reviewer"] and ACCESS.identify("review-key").name == "rita"
    assert ACCESS.identify("operate-key").operator == "otto"
    assert ACCESS.identify("upload-key").roles == ["uploader"] and ACCESS.identify("upload-key").name == ""
    assert ACCESS.identify("") is None and ACCESS.identify(None) is None


def test_operator_keys_are_named_and_kept_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONING_API_KEYS", "k-upload")
    monkeypatch.setenv("CAPTIONING_REVIEWER_KEYS", "rita=k-review")
    monkeypatch.setenv("CAPTIONING_OPERATOR_KEYS", "otto=k-op,ops@example=k-op2")
    assert ServiceSettings().operators() == {"k-op": "otto", "k-op2": "ops@example"}
    monkeypatch.setenv("CAPTIONING_OPERATOR_KEYS", "otto=k-review")
    with pytest.raises(ValueError, match="also an API or reviewer key"):
        ServiceSettings().operators()
    monkeypatch.setenv("CAPTIONING_OPERATOR_KEYS", "otto k-secret")
    with pytest.raises(ValueError, match="CAPTIONING_OPERATOR_KEYS entry 1") as caught:
        ServiceSettings().operators()
    assert "k-secret" not in str(caught.value)
    monkeypatch.delenv("CAPTIONING_OPERATOR_KEYS")
    assert ServiceSettings().operators() == {}


def test_local_runs_generate_an_operator_key_once(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPTIONING_OPERATOR_KEYS", raising=False)
    config = InfraConfig(local=LocalInfraSettings(state_dir=tmp_path))
    env = local_operator_env(config)
    name, _, key = env["CAPTIONING_OPERATOR_KEYS"].partition("=")
    assert name == "local-operator" and len(key) >= 32 and local_operator_env(config) == env
    assert stat.S_IMODE((tmp_path / "operator-key").stat().st_mode) == 0o600
    assert PipelineService(config, "console").command()[1]["CAPTIONING_OPERATOR_KEYS"] == env["CAPTIONING_OPERATOR_KEYS"]
    monkeypatch.setenv("CAPTIONING_OPERATOR_KEYS", "ops=configured")
    assert local_operator_env(config) == {}


def _record(event, subject: str | None = IMAGE):
    return encode_event(event, "test", subject)


def test_records_become_updates_of_their_image() -> None:
    live, queue = feed_topics(load_topics())
    assert queue == "moderation.review" and queue not in live
    assert {"images.uploaded", "captions.generated", "captions.moderated", "index.updated", "images.submitted.dlq"} <= set(live)
    assert update_of("images.uploaded", *_record(ImageUploaded(image_id=IMAGE)), queue).stage == "received"
    assert update_of("index.updated", *_record(IndexUpdated(image_id=IMAGE)), queue).stage == "indexed"
    removed = IndexUpdated(image_id=IMAGE, operation=IndexOperation.INDEX_OPERATION_DELETE)
    assert update_of("index.updated", *_record(removed), queue).stage == "moderated"
    held = update_of(queue, *_record(ModerationVerdict(image_id=IMAGE, verdict=Verdict.VERDICT_REVIEW)), queue)
    assert (held.stage, held.queue) == ("moderated", "held")
    approved = update_of("captions.moderated", *_record(ModerationVerdict(image_id=IMAGE, verdict=Verdict.VERDICT_APPROVE)), queue)
    assert (approved.stage, approved.queue) == ("moderated", "released")
    assert update_of("captions.moderated", *_record(ModerationVerdict(image_id=IMAGE, verdict=Verdict.VERDICT_REVIEW)), queue).queue == ""
    assert update_of("images.uploaded.dlq", *_record(DeadLetter(image_id=IMAGE, error_code="x"), None), queue).stage == "failed"
    # A claim-check submission that never became an image has no id to follow; garbage is no event.
    assert update_of("images.submitted.dlq", *_record(DeadLetter(error_code="object_missing"), "client-ref"), queue) is None
    assert update_of("images.uploaded", [], b"garbage", queue) is None


def test_the_feed_keeps_the_held_ids_and_tells_only_the_streams_that_follow() -> None:
    feed = PipelineFeed(None, PipelineMetrics("console-test"), load_topics())
    other = "cd" * 32

    async def scenario() -> tuple[list, list]:
        follower, reviewer = Subscriber({IMAGE}, review_queue=False), Subscriber(set(), review_queue=True)
        feed.subscribe(follower)
        feed.subscribe(reviewer)
        feed._dispatch("images.uploaded", update_of("images.uploaded", *_record(ImageUploaded(image_id=IMAGE)), feed.queue_topic))
        for image_id in (other, IMAGE):
            verdict = ModerationVerdict(image_id=image_id, verdict=Verdict.VERDICT_REVIEW)
            feed._dispatch(feed.queue_topic, update_of(feed.queue_topic, *_record(verdict, image_id), feed.queue_topic))
        assert feed.held() == [other, IMAGE]
        released = ModerationVerdict(image_id=other, verdict=Verdict.VERDICT_APPROVE)
        feed._dispatch("captions.moderated", update_of("captions.moderated", *_record(released, other), feed.queue_topic))
        feed._dispatch("captions.moderated", update_of("captions.moderated", *_record(released, other), feed.queue_topic))
        feed.unsubscribe(follower)
        feed._dispatch("images.uploaded", update_of("images.uploaded", *_record(ImageUploaded(image_id=IMAGE)), feed.queue_topic))
        await asyncio.sleep(0)
        drain = lambda s: [s.updates.get_nowait() for _ in range(s.updates.qsize())]  # noqa: E731
        return drain(follower), drain(reviewer)

    followed, queue = asyncio.run(scenario())
    assert [(u.topic, u.stage) for u in followed] == [("images.uploaded", "received"), ("moderation.review", "moderated")]
    assert [(u.image_id, u.queue) for u in queue] == [(other, "held"), (IMAGE, "held"), (other, "released")]  # released once
    assert feed.held() == [IMAGE]


class _Upstream:
    """The ingest API as the console sees it: an image whose status advances after some reads."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.reads = 0

    async def image_status(self, image_id: str, key: str) -> dict:
        status = self.statuses[min(self.reads, len(self.statuses) - 1)]
        self.reads += 1
        return {"id": image_id, "status": status}


@pytest.mark.parametrize(
    "statuses, stage, shown, reads",
    [
        (["moderated", "moderated", "indexed"], "indexed", "indexed", 3),  # the mark lands just after the event
        (["indexed"], "indexed", "indexed", 1),
        (["indexed"], "captioned", "indexed", 1),  # already further than the event: shown at once
        (["failed"], "indexed", "failed", 1),
        (["moderated"], "moderated", "moderated", 1),
        (["captioned"], "indexed", "captioned", 7),  # never catches up: shown as it is after the last try
    ],
)
def test_a_view_behind_its_event_is_read_again_until_it_shows_the_stage(statuses, stage, shown, reads) -> None:
    upstream = _Upstream(statuses)
    view = asyncio.run(view_showing(upstream, Update("index.updated", IMAGE, stage), "key"))
    assert (view["status"], upstream.reads) == (shown, reads)


class _Queue:
    def items(self) -> list[dict]:
        return [{"id": IMAGE}]


class _DeadLetters:
    topics = {"images.uploaded.dlq": None}

    def __init__(self) -> None:
        self.replayed: list = []

    def replay(self, topic: str, chosen: set, operator: str) -> ReplayReport:
        self.replayed.append((topic, chosen, operator))
        return ReplayReport(read=len(chosen), replayed=len(chosen))


@pytest.fixture()
def client() -> tuple[TestClient, _DeadLetters]:
    dead_letters = _DeadLetters()
    app = create_app(ConsoleSettings(), ACCESS, None, None, _Queue(), dead_letters, PipelineMetrics("console-test"), {}, 1024)
    return TestClient(app), dead_letters


def test_the_pages_are_served_with_a_strict_policy(client) -> None:
    http, _ = client
    page = http.get("/")
    assert page.status_code == 200 and '<script src="/static/console.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert http.get("/static/console.js").status_code == 200 and http.get("/static/console.css").status_code == 200
    assert http.get("/healthz").status_code == 200


def test_the_api_answers_for_the_key_shown(client) -> None:
    http, dead_letters = client
    assert http.get("/api/session", headers={"X-API-Key": "review-key"}).json() == {"roles": ["reviewer"], "name": "rita"}
    assert http.get("/api/review-queue", headers={"X-API-Key": "review-key"}).json() == {"items": [{"id": IMAGE}]}
    assert http.get("/api/review-queue", headers={"X-API-Key": "upload-key"}).json()["error"]["code"] == "forbidden"
    replayed = http.post("/api/dead-letters/images.uploaded.dlq/replay", json={"records": [{"partition": 2, "offset": 7}]}, headers={"X-API-Key": "operate-key"})
    assert replayed.status_code == 200 and replayed.json()["replayed"] == 1
    assert dead_letters.replayed == [("images.uploaded.dlq", {(2, 7)}, "otto")]
    unknown = http.post("/api/dead-letters/index.updated/replay", json={"records": [{"partition": 0, "offset": 0}]}, headers={"X-API-Key": "operate-key"})
    assert unknown.status_code == 404
    empty = http.post("/api/dead-letters/images.uploaded.dlq/replay", json={"records": []}, headers={"X-API-Key": "operate-key"})
    assert empty.status_code == 400
    too_big = http.post("/api/images", content=b"x" * 2048, headers={"X-API-Key": "upload-key", "Content-Type": "image/png"})
    assert too_big.status_code == 413
    assert http.get("/api/events?ids=not-an-id", headers={"X-API-Key": "upload-key"}).status_code == 400


def test_a_replay_position_is_partition_colon_offset() -> None:
    assert position("3:17") == (3, 17)
    for text in ("3", "a:1", "1:-2", ":"):
        with pytest.raises(ValueError):
            position(text)


class _Consumer:
    """The two watermark calls ``_start_offsets`` makes, over partitions 0 (offsets 0..9) and 1 (5..19)."""

    marks = {0: (0, 10), 1: (5, 20)}

    def list_topics(self, topic, timeout):
        return type("Metadata", (), {"topics": {topic: type("Topic", (), {"partitions": dict.fromkeys(self.marks)})}})

    def get_watermark_offsets(self, partition, timeout):
        return self.marks[partition.partition]


def test_a_selection_reads_only_from_the_first_to_the_last_chosen_letter() -> None:
    from captioning_common.kafka.replay import _start_offsets

    starts, ends = _start_offsets(_Consumer(), "images.uploaded.dlq", None, {(1, 12), (1, 7)})
    assert [(tp.partition, tp.offset) for tp in starts] == [(1, 7)] and ends[1] == 13
    starts, ends = _start_offsets(_Consumer(), "images.uploaded.dlq", None, {(1, 2), (0, 30)})  # gone already, and past the end
    assert sorted((tp.partition, tp.offset) for tp in starts) == [(0, 30), (1, 5)] and ends == {0: 10, 1: 3}
    starts, ends = _start_offsets(_Consumer(), "images.uploaded.dlq", None)
    assert sorted((tp.partition, tp.offset) for tp in starts) == [(0, 0), (1, 5)] and ends == {0: 10, 1: 20}
