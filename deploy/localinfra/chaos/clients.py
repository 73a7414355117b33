"""The run's clients: the uploader and claim-check platform, and the reviewer reading the review queue."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import Counter

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from captioning_common.events import EnvelopeError, decode_event, timestamp_now
from captioning_common.kafka.producer import EventProducer
from captioning_common.storage import ObjectStore
from captioning_events.v1.common_pb2 import ObjectRef
from captioning_events.v1.image_pb2 import ImageSubmitted
from captioning_events.v1.moderation_pb2 import ModerationVerdict, Verdict
from localinfra.chaos.environment import ChaosEnvironment
from localinfra.chaos.workload import SUBMISSION_PREFIX, Item, RetryingClient, Sent, retry

SUBMISSIONS_TOPIC = "images.submitted"
REVIEW_TOPIC = "moderation.review"


class Sender:
    """Sends an item through ``POST /v1/images`` or as a claim check (object put, then ``ImageSubmitted``)."""

    def __init__(self, env: ChaosEnvironment, client: RetryingClient, budget_s: float) -> None:
        self.env = env
        self.client = client
        self.budget_s = budget_s
        self.store = ObjectStore(env.config.s3)
        self.producer = EventProducer(env.config.kafka, source="chaos-platform", log_level=0)  # its retries are counted instead
        self.backend_errors: Counter = Counter()  # S3 and Kafka errors the platform retried, by type
        self._lock = threading.Lock()

    def _backend_error(self, exc: Exception) -> None:
        with self._lock:
            self.backend_errors[type(exc).__name__] += 1

    def send(self, item: Item) -> Sent:
        return self._upload(item) if item.via == "upload" else self._claim_check(item)

    def _upload(self, item: Item) -> Sent:
        response = self.client.call(
            "POST", f"{self.env.ingest_url}/v1/images",
            files={"file": ("image", item.data)}, data={"client_ref": item.client_ref}, headers=self.env.headers,
        )
        if response is None:
            return Sent(item, "gave_up")
        if response.status_code in (200, 202):
            return Sent(item, str(response.status_code), response.json().get("id", ""))
        return Sent(item, f"{response.status_code}: {response.text[:300]}")

    def _claim_check(self, item: Item) -> Sent:
        key = f"{SUBMISSION_PREFIX}{item.index}"
        bucket = self.env.config.s3.bucket
        if not retry(lambda: self.store.put(key, item.data), self.budget_s, self._backend_error):
            return Sent(item, "gave_up")
        event = ImageSubmitted(object=ObjectRef(bucket=bucket, key=key), client_ref=item.client_ref, submitted_at=timestamp_now())
        if not retry(lambda: self.producer.send(SUBMISSIONS_TOPIC, event, key=item.client_ref), self.budget_s, self._backend_error):
            return Sent(item, "gave_up")
        return Sent(item, "produced", item.image_id)

    def close(self) -> None:
        self.producer.close()


def intended_verdict(seed: int, image_id: str) -> str:
    """The reviewer's seeded decision: about two in three approved."""
    return "reject" if int(hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest(), 16) % 3 == 0 else "approve"


class Reviewer:
    """Reads ``moderation.review`` from the start and decides each held image once through ``POST /v1/reviews/{id}``."""

    def __init__(self, env: ChaosEnvironment, client: RetryingClient, seed: int) -> None:
        self.env = env
        self.client = client
        self.seed = seed
        self.held: set[str] = set()
        self.decided: dict[str, str] = {}  # image id -> the verdict the API accepted (202)
        self.refused: dict[str, str] = {}  # image id -> the answer when the API did not accept the decision
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reviewer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop reading (idempotent; a reviewer never started just stays stopped)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()

    def pending(self) -> int:
        """Held images seen but not decided yet."""
        return len(self.held - set(self.decided) - set(self.refused))

    def _run(self) -> None:
        consumer = Consumer(self.env.config.kafka.client_config() | {"group.id": f"chaos-reviewer-{uuid.uuid4()}", "enable.auto.commit": False, "log_level": 0})
        assigned = False
        try:
            while not self._stop.is_set():
                if not assigned:
                    assigned = self._assign(consumer)
                    continue
                message = consumer.poll(0.5)
                if message is None or message.error():
                    continue
                try:
                    _, event = decode_event(message.headers(), message.value())
                except EnvelopeError:
                    continue
                if isinstance(event, ModerationVerdict) and event.verdict == Verdict.VERDICT_REVIEW and event.image_id not in self.held:
                    self.held.add(event.image_id)
                    self._decide(event.image_id)
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> bool:
        try:
            topic = consumer.list_topics(REVIEW_TOPIC, timeout=5).topics[REVIEW_TOPIC]
        except Exception:
            return False
        consumer.assign([TopicPartition(REVIEW_TOPIC, p, OFFSET_BEGINNING) for p in topic.partitions])
        return True

    def _decide(self, image_id: str) -> None:
        verdict = intended_verdict(self.seed, image_id)
        url = f"{self.env.ingest_url}/v1/reviews/{image_id}"
        body = {"verdict": verdict, "note": "chaos run"}
        response = self.client.call("POST", url, json=body, headers={"X-API-Key": self.env.reviewer_key})  # the key names the reviewer
        if response is not None and response.status_code == 202:
            self.decided[image_id] = verdict
        elif response is not None and response.status_code == 409 and self._already(image_id, verdict):
            self.decided[image_id] = verdict  # an earlier attempt landed though its answer was lost
        else:
            self.refused[image_id] = "no answer" if response is None else f"{response.status_code}: {response.text[:300]}"

    def _already(self, image_id: str, verdict: str) -> bool:
        response = self.client.call("GET", f"{self.env.ingest_url}/v1/images/{image_id}", headers=self.env.headers)
        return response is not None and response.status_code == 200 and response.json().get("verdict") == verdict
