"""The upload API in process (ASGI), with in-memory records and producer: keys, body limits, bounds, reviews."""

from __future__ import annotations

import asyncio
import threading

import httpx

from captioning_common.metrics import PipelineMetrics
from captioning_common.reviews import verify_decision
from services.ingest.api import Access, create_app
from services.ingest.intake import Intake
from services.ingest.settings import IngestSettings
from services.ingest.validation import validate_image
from tests.unit.ingest_fakes import FakeProducer, FakeRecords, png_bytes

UPLOAD = {"X-API-Key": "upload-key"}
REVIEWER = {"X-API-Key": "reviewer-key"}
SIGNING_KEY = "signing-key"
CHUNK = 64 * 1024


class App:
    """An ingest app on fakes, called in process."""

    def __init__(self, signing_key: str = SIGNING_KEY, **settings) -> None:
        self.records, self.producer = FakeRecords(), FakeProducer()
        self.metrics = PipelineMetrics("ingest")
        self.settings = IngestSettings(**({"max_bytes": 1_000_000} | settings))
        access = Access(["upload-key"], {"reviewer-key": "rita"}, signing_key)
        self.asgi = create_app(self.settings, access, Intake(self.records, self.producer), self.records, self.metrics, {})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.asgi), base_url="http://ingest")


def run(coroutine):
    return asyncio.run(coroutine)


class CountingBody:
    """A chunked request body of ``total`` bytes that counts how much of it the server pulled."""

    def __init__(self, total: int, prefix: bytes = b"") -> None:
        self.total, self.prefix, self.pulled = total, prefix, 0

    async def __aiter__(self):
        if self.prefix:
            self.pulled += len(self.prefix)
            yield self.prefix
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield b"\0" * CHUNK


def multipart_head(boundary: str = "xyz") -> tuple[bytes, dict[str, str]]:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
    return head, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_an_unauthenticated_chunked_upload_is_refused_before_its_body_is_read() -> None:
    app = App()
    head, headers = multipart_head()
    body = CountingBody(50 * 1024 * 1024, head)

    async def call():
        async with app.client() as client:
            return await client.post("/v1/images", content=body, headers=headers)

    response = run(call())
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert body.pulled == 0


def test_an_authenticated_chunked_upload_over_the_cap_gets_413_while_streaming() -> None:
    app = App()
    head, headers = multipart_head()
    body = CountingBody(50 * 1024 * 1024, head)

    async def call():
        async with app.client() as client:
            return await client.post("/v1/images", content=body, headers=headers | UPLOAD)

    response = run(call())
    assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large"
    assert response.headers["connection"] == "close"
    assert body.pulled <= app.settings.max_bytes + 2 * 64 * 1024 + CHUNK
    assert app.producer.sent == []


def test_a_normal_upload_is_accepted() -> None:
    app = App()

    async def call():
        async with app.client() as client:
            return await client.post("/v1/images", files={"file": ("a.png", png_bytes())}, data={"languages": "en"}, headers=UPLOAD)

    response = run(call())
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "received" and len(app.producer.sent) == 1


def test_a_retry_after_a_crash_mid_claim_starts_the_run() -> None:
    app, data = App(), png_bytes(shade=3)
    image = validate_image(data, app.settings)
    app.records.create(image.image_id, "received", {
        "image_id": image.image_id, "object": {"bucket": "test-bucket", "key": f"originals/{image.image_id}"},
        "content_type": "image/png", "size_bytes": len(data), "width": 40, "height": 30, "languages": ["en"],
        "client_ref": "", "metadata": {}, "source": "upload", "received_at": "2030-01-01T00:00:00+00:00", "state": "pending",
    })  # what a process killed before the broker's acknowledgement leaves behind

    async def call():
        async with app.client() as client:
            return await client.post("/v1/images", files={"file": ("a.png", data)}, headers=UPLOAD)

    response = run(call())
    assert response.status_code == 202, response.text
    assert [key for _, key, _ in app.producer.sent] == [image.image_id]


def test_the_method_label_of_request_metrics_is_bounded() -> None:
    app = App()

    async def call():
        async with app.client() as client:
            for method in ("GET", "BREW", "X" * 40, "post"):
                await client.request(method, "/v1/images/abc", headers=UPLOAD)

    run(call())
    methods = {s.labels["method"] for m in app.metrics.registry.collect() if m.name == "captioning_http_requests" for s in m.samples}
    assert methods == {"GET", "POST", "other"}


def test_uploads_over_the_concurrency_limit_get_503_busy() -> None:
    app = App(max_concurrent_uploads=2)
    app.producer.gate = threading.Event()

    async def call():
        async with app.client() as client:
            def post(shade):
                return client.post("/v1/images", files={"file": ("a.png", png_bytes(shade=shade))}, headers=UPLOAD)

            held = [asyncio.create_task(post(shade)) for shade in (1, 2)]
            while len(app.records.records) < 2:  # both claimed, waiting for the broker
                await asyncio.sleep(0.01)
            try:
                busy = await asyncio.wait_for(post(3), 5)
            finally:
                app.producer.gate.set()
            return busy, await asyncio.gather(*held)

    busy, held = run(call())
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy" and busy.headers["retry-after"]
    assert [r.status_code for r in held] == [202, 202]


def test_status_reads_run_on_a_bounded_pool_and_excess_reads_get_503_busy() -> None:
    app = App(status_read_threads=1, status_read_queue=1)
    app.records.gate = threading.Event()
    path = "/v1/images/" + "a" * 64

    async def call():
        async with app.client() as client:
            held = [asyncio.create_task(client.get(path, headers=UPLOAD)) for _ in range(2)]
            while app.records.reading < 1:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            try:
                busy = await asyncio.wait_for(client.get(path, headers=UPLOAD), 5)
            finally:
                app.records.gate.set()
            return busy, await asyncio.gather(*held)

    busy, held = run(call())
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy" and busy.headers["retry-after"]
    assert [r.status_code for r in held] == [404, 404]
    assert app.records.most_reading == 1


HELD = "c" * 64


def _hold(app: App, image_id: str = HELD) -> None:
    app.records.put(image_id, "moderation", {"verdict": "review", "reasons": [], "captions": [], "moderated_at": "t", "reviewer": ""})


def _review(app: App, headers: dict[str, str], body: dict | None = None, image_id: str = HELD) -> httpx.Response:
    async def call():
        async with app.client() as client:
            return await client.post(f"/v1/reviews/{image_id}", json=body or {"verdict": "reject", "note": "n"}, headers=headers)

    return run(call())


def test_a_reviewer_key_decides_and_the_decision_is_signed_in_its_name() -> None:
    app = App()
    _hold(app)
    response = _review(app, REVIEWER, {"verdict": "approve", "note": "fine"})
    assert response.status_code == 202, response.text
    assert response.json() == {"id": HELD, "decision": "approve", "reviewer": "rita"}
    ((topic, key, event),) = app.producer.sent
    assert (topic, key, event.reviewer, event.note) == ("moderation.decisions", HELD, "rita", "fine")
    assert verify_decision(event, SIGNING_KEY)
    event.reviewer = "someone-else"
    assert not verify_decision(event, SIGNING_KEY)


def test_an_upload_key_cannot_decide_reviews() -> None:
    app = App()
    _hold(app)
    body = CountingBody(50 * 1024 * 1024, b'{"verdict": "approve"')

    async def call():
        async with app.client() as client:
            return await client.post(f"/v1/reviews/{HELD}", content=body, headers=UPLOAD | {"Content-Type": "application/json"})

    response = run(call())
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert "reviewer key" in response.json()["error"]["message"]
    assert body.pulled == 0 and app.producer.sent == []


def test_reviews_without_a_known_key_get_401() -> None:
    app = App()
    _hold(app)
    for headers in ({}, {"X-API-Key": "guess"}):
        response = _review(app, headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert app.producer.sent == []


def test_the_reviewer_is_not_taken_from_the_body() -> None:
    app = App()
    _hold(app)
    response = _review(app, REVIEWER, {"verdict": "approve", "reviewer": "alice"})
    assert response.status_code == 400 and "reviewer" in response.json()["error"]["message"]
    assert app.producer.sent == []


def test_without_a_signing_key_reviews_are_unavailable() -> None:
    app = App(signing_key="")
    _hold(app)
    response = _review(app, REVIEWER)
    assert response.status_code == 503 and response.json()["error"]["code"] == "reviews_unavailable"
    assert app.producer.sent == []


def test_only_held_images_can_be_decided() -> None:
    app = App()
    response = _review(app, REVIEWER)
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_in_review"


def test_a_reviewer_key_reads_status_but_does_not_upload() -> None:
    app = App()

    async def call():
        async with app.client() as client:
            status = await client.get("/v1/images/" + "d" * 64, headers=REVIEWER)
            upload = await client.post("/v1/images", files={"file": ("a.png", png_bytes())}, headers=REVIEWER)
            return status, upload

    status, upload = run(call())
    assert status.status_code == 404 and status.json()["error"]["code"] == "not_found"
    assert upload.status_code == 403 and upload.json()["error"]["code"] == "forbidden"
    assert app.producer.sent == []


def test_a_declared_length_over_the_cap_is_refused_before_the_body() -> None:
    app = App()
    head, headers = multipart_head()
    body = CountingBody(2 * 1024 * 1024, head)

    async def call():
        async with app.client() as client:
            return await client.post("/v1/images", content=body, headers=headers | UPLOAD | {"Content-Length": str(2 * 1024 * 1024)})

    response = run(call())
    assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large"
    assert body.pulled == 0


def test_refusals_are_counted_under_their_route() -> None:
    app = App()
    _review(app, {})
    samples = [s for m in app.metrics.registry.collect() if m.name == "captioning_http_requests" for s in m.samples if s.name.endswith("_total")]
    assert [(s.labels["method"], s.labels["route"], s.labels["code"]) for s in samples] == [("POST", "/v1/reviews/{image_id}", "401")]


def test_a_bucket_that_fails_under_a_status_read_answers_503_not_500() -> None:
    from botocore.exceptions import EndpointConnectionError

    app = App()

    def unreachable(image_id: str):
        raise EndpointConnectionError(endpoint_url="http://s3")

    app.records.all = unreachable

    async def call():
        async with app.client() as client:
            return await client.get("/v1/images/" + "a" * 64, headers=UPLOAD)

    response = run(call())
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
