"""The whole pipeline against the real Kafka, MinIO and Triton: upload → caption → moderation → index → search."""

from __future__ import annotations

import io
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import requests
from confluent_kafka import Producer
from PIL import Image

from captioning_common.events import timestamp_now
from captioning_common.kafka import EventProducer
from captioning_common.kafka.replay import replay
from captioning_common.records import ImageRecords, original_key
from captioning_common.reviews import verify_decision
from captioning_common.storage import ObjectStore
from captioning_events.v1.caption_pb2 import Caption, CaptionGenerated
from captioning_events.v1.common_pb2 import ModelInfo, ObjectRef
from captioning_events.v1.image_pb2 import ImageSubmitted, ImageUploaded
from services.ingest.validation import image_id_of
from tests.integration.pipeline_client import (
    SESSION_SALT,
    end_offsets,
    image_status,
    read_since,
    review,
    scene_images,
    search,
    upload,
    upload_all,
    wait_for,
    wait_until_accepted,
)

TAG = "pipeline"  # salts this module's uploads: ids no other test module shares


def test_200_uploads_end_captioned_moderated_and_searchable(pipeline, kafka) -> None:
    images = scene_images(200, seed=1001, tag=TAG)
    index_start = end_offsets(kafka, "index.updated")
    responses = upload_all(pipeline, images)
    assert [r.status_code for r in responses] == [202] * 200, [r.text for r in responses if r.status_code != 202][:3]
    ids = [r.json()["id"] for r in responses]
    assert ids == [image_id_of(data) for data in images]

    statuses = wait_for(pipeline, ids)
    for image_id in ids:
        status = statuses[image_id]
        assert status["status"] == "indexed", status
        assert status["verdict"] == "approve"
        assert set(status["captions"]) == {"en", "ko"}
        assert all(c["text"] and c["keywords"] for c in status["captions"].values())
        assert status["keywords"] and status["hashtags"] and status["model"]["name"] == "captioner"
        assert status["captioned_at"] <= status["moderated_at"] <= status["indexed_at"]

    indexed = Counter(key for key, _ in read_since(kafka, "index.updated", index_start))
    assert {image_id: indexed[image_id] for image_id in ids} == {image_id: 1 for image_id in ids}

    for image_id in ids:
        caption = statuses[image_id]["captions"]["en"]["text"]
        response = search(pipeline, caption, "en", 3)
        assert response.status_code == 200, response.text
        hits = response.json()["results"]
        # Several images can share one caption word for word; then any of them is a right answer.
        assert image_id in [h["id"] for h in hits] or all(h["caption"] == caption for h in hits), (caption, hits)
    ko_hits = search(pipeline, statuses[ids[0]]["captions"]["ko"]["text"], "ko", 3).json()["results"]
    assert ko_hits and all(h["caption"] for h in ko_hits)
    image = requests.get(search(pipeline, statuses[ids[0]]["captions"]["en"]["text"]).json()["results"][0]["image_url"], timeout=30)
    assert image.status_code == 200 and image.content[:2] in (b"\x89P", b"\xff\xd8", b"RI")


def test_duplicate_uploads_start_no_second_run(pipeline, kafka) -> None:
    (data,) = scene_images(1, seed=2002, tag=TAG)
    start = end_offsets(kafka, "images.uploaded")
    first = upload(pipeline, data)
    assert first.status_code == 202, first.text
    image_id = first.json()["id"]
    wait_for(pipeline, [image_id])
    again = [upload(pipeline, data) for _ in range(3)]
    assert [r.status_code for r in again] == [200] * 3
    assert all(r.json()["id"] == image_id and r.json()["status"] == "indexed" for r in again)

    # Concurrent duplicates of a new image: exactly one upload starts the run.
    (fresh,) = scene_images(1, seed=2003, tag=TAG)
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(r.status_code for r in pool.map(lambda _: upload(pipeline, fresh), range(8)))
    assert codes == [200] * 7 + [202]

    events = Counter(key for key, _ in read_since(kafka, "images.uploaded", start))
    assert events[image_id] == 1 and events[image_id_of(fresh)] == 1


def _png(size: tuple[int, int], colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_input_gets_4xx_and_leaves_no_trace(pipeline, kafka) -> None:
    s3 = pipeline.s3
    good = _png((64, 64), (10, 200, 10))
    jpeg = scene_images(3, seed=3003, tag=TAG)[1]
    icon = io.BytesIO()
    Image.new("RGB", (32, 32)).save(icon, format="ICO")  # an image format ingest does not accept
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, format="PNG")  # 100 megapixels in a few kilobytes
    cases = [
        ("empty", b"", {}, 400, "empty_file"),
        ("truncated png", good[: len(good) // 2], {}, 422, "corrupt_image"),
        ("corrupt jpeg", jpeg[:200] + bytes(len(jpeg) - 200), {}, 422, "corrupt_image"),
        ("ico", icon.getvalue(), {}, 415, "unsupported_format"),
        ("text named .png", b"not an image at all, just text", {}, 415, "unsupported_format"),
        ("decompression bomb", bomb.getvalue(), {}, 413, "too_many_pixels"),
        ("too large", b"\x89PNG\r\n\x1a\n" + os.urandom(21 * 1024 * 1024), {}, 413, "file_too_large"),
        ("too small", _png((4, 4)), {}, 422, "image_too_small"),
        ("unknown language", good, {"languages": "en,fr"}, 400, "unsupported_language"),
        ("metadata not json", good, {"metadata": "{oops"}, 400, "invalid_metadata"),
        ("metadata not strings", good, {"metadata": '{"a": 1}'}, 400, "invalid_metadata"),
    ]
    start = end_offsets(kafka, "images.uploaded")
    records = ImageRecords(ObjectStore(s3))
    for name, data, form, status, code in cases:
        response = requests.post(
            f"{pipeline.ingest_url}/v1/images", files={"file": ("x.png", data, "image/png")}, data=form, headers=pipeline.headers, timeout=60
        )
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (name, response.text)
        assert response.json()["error"]["message"]
        image_id = image_id_of(data)
        assert records.store.head(original_key(image_id)) is None, name
        assert records.all(image_id) == {}, name

    unauthorised = requests.post(f"{pipeline.ingest_url}/v1/images", files={"file": ("x.png", good)}, timeout=30)
    assert unauthorised.status_code == 401 and unauthorised.json()["error"]["code"] == "unauthorized"
    wrong_key = requests.post(f"{pipeline.ingest_url}/v1/images", files={"file": ("x.png", good)}, headers={"X-API-Key": "nope"}, timeout=30)
    assert wrong_key.status_code == 401
    assert records.store.head(original_key(image_id_of(good))) is None
    assert end_offsets(kafka, "images.uploaded") == start, "a rejected upload produced an event"

    assert requests.get(f"{pipeline.ingest_url}/v1/images/{'0' * 64}", headers=pipeline.headers, timeout=30).status_code == 404
    assert requests.get(f"{pipeline.ingest_url}/v1/images/not-an-id", headers=pipeline.headers, timeout=30).status_code == 400
    assert search(pipeline, "   ").status_code == 400
    assert requests.get(f"{pipeline.search_url}/v1/search", params={"q": "red"}, timeout=30).status_code == 401


def test_poison_messages_are_dead_lettered_while_the_others_flow(pipeline, kafka) -> None:
    s3 = pipeline.s3
    store = ObjectStore(s3)
    dlq_start = end_offsets(kafka, "images.uploaded.dlq")
    replay_since = datetime.now(timezone.utc)
    undecodable = b"\xff\xd8\xff\xe0" + b"this is no jpeg" * 20
    undecodable_id = image_id_of(undecodable)
    store.put(original_key(undecodable_id), undecodable)
    missing_id = image_id_of(f"never stored {SESSION_SALT}".encode())  # the replay below stores it
    producer = EventProducer(kafka, source="test")
    raw = Producer(kafka.client_config())
    raw.produce("images.uploaded", key=b"garbage", value=b"\x00\x01 not an event")
    raw.flush(30)
    for image_id in (undecodable_id, missing_id):
        event = ImageUploaded(image_id=image_id, object=ObjectRef(bucket=s3.bucket, key=original_key(image_id)), content_type="image/jpeg", languages=["en"])
        producer.send("images.uploaded", event, key=image_id)
    producer.close()

    good = upload_all(pipeline, scene_images(12, seed=4004, tag=TAG))
    good_ids = [r.json()["id"] for r in good]
    statuses = wait_for(pipeline, good_ids, done=lambda s: s["status"] in ("indexed", "failed"))
    assert all(s["status"] == "indexed" for s in statuses.values())

    deadline = time.monotonic() + 60
    while True:
        letters = {key: event for key, event in read_since(kafka, "images.uploaded.dlq", dlq_start)}
        if {"garbage", undecodable_id, missing_id} <= set(letters) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert letters["garbage"].error_code == "invalid_event" and letters["garbage"].original_value == b"\x00\x01 not an event"
    assert letters[undecodable_id].error_code == "image_rejected" and "undecodable" in letters[undecodable_id].error_message
    assert letters[missing_id].error_code == "object_missing"
    assert all(letter.stage == "caption" and letter.source_topic == "images.uploaded" for letter in letters.values())
    failure = ImageRecords(store).get(undecodable_id, "failure")
    assert failure["stage"] == "caption" and failure["code"] == "image_rejected"

    # Once the missing object exists, replaying its dead letter completes the image.
    store.put(original_key(missing_id), scene_images(1, seed=4005, tag=TAG)[0])
    report = replay("images.uploaded.dlq", kafka, ImageRecords(store), codes={"object_missing"}, since=replay_since)
    assert report.replayed >= 1 and report.skipped >= 2
    deadline = time.monotonic() + 60
    while ImageRecords(store).get(missing_id, "index") is None:
        assert time.monotonic() < deadline, "the replayed image was not indexed"
        time.sleep(0.5)
    assert ImageRecords(store).get(missing_id, "failure") is None


def test_claim_check_submissions_are_validated_like_uploads(pipeline, kafka) -> None:
    s3 = pipeline.s3
    store = ObjectStore(s3)
    good, corrupt = scene_images(1, seed=5005, tag=TAG)[0], b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    store.put("incoming/good.png", good)
    store.put("incoming/corrupt.png", corrupt)
    dlq_start = end_offsets(kafka, "images.submitted.dlq")
    producer = EventProducer(kafka, source="test-platform")
    for key, ref in (("good", "incoming/good.png"), ("corrupt", "incoming/corrupt.png"), ("missing", "incoming/missing.png")):
        event = ImageSubmitted(object=ObjectRef(bucket=s3.bucket, key=ref), languages=["en", "ko"], client_ref=key, metadata={"platform": "test"})
        producer.send("images.submitted", event, key=key)
    producer.close()

    image_id = image_id_of(good)
    wait_until_accepted(pipeline, image_id, "the claim-check submission")
    status = wait_for(pipeline, [image_id])[image_id]
    assert status["status"] == "indexed" and status["client_ref"] == "good" and status["metadata"] == {"platform": "test"}

    letters = {key: event for key, event in read_since(kafka, "images.submitted.dlq", dlq_start)}
    assert letters["corrupt"].error_code == "corrupt_image" and letters["corrupt"].stage == "ingest"
    assert letters["missing"].error_code == "object_missing"
    assert ImageRecords(store).all(image_id_of(corrupt)) == {}


def test_review_items_wait_for_a_decision(pipeline, kafka) -> None:
    """A caption that guesses a person's attributes is held (policy `flag`) until a reviewer decides."""
    s3 = pipeline.s3
    held = upload(pipeline, scene_images(1, seed=6006, tag=TAG)[0], languages="en")
    image_id = held.json()["id"]
    wait_for(pipeline, [image_id])
    review_start = end_offsets(kafka, "moderation.review")
    status = image_status(pipeline, image_id)
    producer = EventProducer(kafka, source="test-caption")
    event = CaptionGenerated(
        image_id=image_id,
        image=ObjectRef(bucket=s3.bucket, key=original_key(image_id)),
        captions=[Caption(language="en", text="a young asian woman holding a red circle", keywords=["woman"], hashtags=["#woman"], score=0.9)],
        model=ModelInfo(name="captioner", version=status["model"]["version"]),
        generated_at=timestamp_now(),
    )
    producer.send("captions.generated", event, key=image_id)
    producer.close()

    in_review = wait_for(pipeline, [image_id], done=lambda s: s["verdict"] == "review")[image_id]
    assert in_review["moderation_reasons"][0]["code"] == "caption.sensitive_attribute"
    assert image_id in {key for key, _ in read_since(kafka, "moderation.review", review_start)}

    assert review(pipeline, image_id, "maybe").status_code == 400
    by_uploader = review(pipeline, image_id, "approve", headers=pipeline.headers)
    assert by_uploader.status_code == 403 and by_uploader.json()["error"]["code"] == "forbidden"
    assert review(pipeline, image_id, "approve", headers={}).status_code == 401
    decisions_start = end_offsets(kafka, "moderation.decisions")
    decided = review(pipeline, image_id, "reject", note="guesses a person's attributes")
    assert decided.status_code == 202, decided.text
    assert decided.json()["reviewer"] == pipeline.REVIEWER
    (signed,) = [event for key, event in read_since(kafka, "moderation.decisions", decisions_start) if key == image_id]
    assert signed.reviewer == pipeline.REVIEWER and verify_decision(signed, pipeline.env["CAPTIONING_REVIEW_SIGNING_KEY"])
    final = wait_for(pipeline, [image_id], done=lambda s: s["verdict"] == "reject" and s["status"] == "moderated")[image_id]
    assert final["reviewer"] == pipeline.REVIEWER
    assert review(pipeline, image_id, "approve").status_code == 409
    assert image_id not in [h["id"] for h in search(pipeline, "a young asian woman holding a red circle", limit=10).json()["results"]]


def test_an_approving_review_decision_releases_the_item(pipeline, kafka) -> None:
    s3 = pipeline.s3
    image_id = upload(pipeline, scene_images(1, seed=6106, tag=TAG)[0], languages="en").json()["id"]
    version = wait_for(pipeline, [image_id])[image_id]["model"]["version"]
    producer = EventProducer(kafka, source="test-caption")
    caption = "an old man standing beside a green triangle"
    event = CaptionGenerated(
        image_id=image_id,
        image=ObjectRef(bucket=s3.bucket, key=original_key(image_id)),
        captions=[Caption(language="en", text=caption, keywords=["green triangle"], hashtags=["#greentriangle"], score=0.9)],
        model=ModelInfo(name="captioner", version=version),
        generated_at=timestamp_now(),
    )
    producer.send("captions.generated", event, key=image_id)
    producer.close()
    # Held for review: taken out of the index again (status back to "moderated").
    wait_for(pipeline, [image_id], done=lambda s: s["verdict"] == "review" and s["status"] == "moderated")
    assert image_id not in [h["id"] for h in search(pipeline, caption, limit=10).json()["results"]]

    decided = review(pipeline, image_id, "approve")
    assert decided.status_code == 202, decided.text
    released = wait_for(pipeline, [image_id], done=lambda s: s["status"] == "indexed" and s["verdict"] == "approve")[image_id]
    assert released["reviewer"] == pipeline.REVIEWER and released["captions"]["en"]["text"] == caption
    assert image_id in [h["id"] for h in search(pipeline, caption, limit=3).json()["results"]]


def test_sigkill_of_the_caption_service_loses_nothing_and_indexes_nothing_twice(pipeline, kafka) -> None:
    caption = pipeline.services["caption"]
    images = scene_images(80, seed=7007, tag=TAG)
    index_start = end_offsets(kafka, "index.updated")
    ids = [r.json()["id"] for r in upload_all(pipeline, images)]
    deadline = time.monotonic() + 60
    while not any(image_status(pipeline, i)["status"] != "received" for i in ids[:10]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(caption.process.pid(), signal.SIGKILL)
    while caption.process.pid() is not None:
        time.sleep(0.05)
    waiting = sum(image_status(pipeline, i)["status"] == "received" for i in ids)
    assert waiting > 0, "every image was captioned before the kill; the test proved nothing"
    caption.start()

    statuses = wait_for(pipeline, ids, done=lambda s: s["status"] in ("indexed", "failed"))
    assert all(s["status"] == "indexed" for s in statuses.values())
    indexed = Counter(key for key, _ in read_since(kafka, "index.updated", index_start))
    assert {image_id: indexed[image_id] for image_id in ids} == {image_id: 1 for image_id in ids}


def test_sigterm_finishes_the_batch_commits_and_exits(pipeline, kafka) -> None:
    moderation = pipeline.services["moderation"]
    index_start = end_offsets(kafka, "index.updated")
    ids = [r.json()["id"] for r in upload_all(pipeline, scene_images(40, seed=8008, tag=TAG))]
    deadline = time.monotonic() + 60
    while not any(image_status(pipeline, i)["verdict"] for i in ids[:10]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = moderation.process.pid()
    os.kill(pid, signal.SIGTERM)
    stopped_by = time.monotonic() + 30
    while moderation.process.pid() is not None:
        assert time.monotonic() < stopped_by, "the moderation service did not exit within 30 s of SIGTERM"
        time.sleep(0.05)
    log_tail = moderation.process.log_tail(5)
    assert '"message": "stopped"' in log_tail, log_tail
    moderation.start()

    statuses = wait_for(pipeline, ids, done=lambda s: s["status"] in ("indexed", "failed"))
    assert all(s["status"] == "indexed" for s in statuses.values())
    indexed = Counter(key for key, _ in read_since(kafka, "index.updated", index_start))
    assert {image_id: indexed[image_id] for image_id in ids} == {image_id: 1 for image_id in ids}


def _metrics(port: str) -> str:
    return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text


def test_every_service_serves_metrics_health_and_readiness(pipeline, kafka) -> None:
    ids = [r.json()["id"] for r in upload_all(pipeline, scene_images(4, seed=9009, tag=TAG))]
    raw = Producer(kafka.client_config())
    raw.produce("images.uploaded", key=b"metrics-poison", value=b"not an event")
    raw.flush(30)
    wait_for(pipeline, ids)
    assert search(pipeline, image_status(pipeline, ids[0])["captions"]["en"]["text"]).status_code == 200

    expected = {
        "INGEST": ['captioning_http_requests_total{code="202",method="POST",route="/v1/images",service="ingest"}', 'stage="validate"'],
        "CAPTION": ["captioning_batch_size_count", 'stage="inference"', 'stage="fetch"', "captioning_consumer_lag{", 'captioning_dead_letters_total{reason="invalid_event"'],
        "MODERATION": ['stage="image_classifier"', 'outcome="approve"', "captioning_consumer_lag{"],
        "INDEXING": ['stage="index_upsert"', 'stage="search"', 'outcome="indexed"', 'route="/v1/search"'],
    }
    deadline = time.monotonic() + 30
    for service, needles in expected.items():
        port = pipeline.env[f"CAPTIONING_{service}_PORT"]
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 200 and all(v == "ok" for v in ready.json()["checks"].values()), ready.text
        while not all(needle in _metrics(port) for needle in needles) and time.monotonic() < deadline:
            time.sleep(0.5)
        text = _metrics(port)
        assert [needle for needle in needles if needle not in text] == [], service


def test_a_triton_outage_delays_captions_and_loses_none(pipeline, servers, kafka) -> None:
    triton = servers.component("triton")
    dlq_start = end_offsets(kafka, "images.uploaded.dlq")
    caption_ready = f"http://127.0.0.1:{pipeline.env['CAPTIONING_CAPTION_PORT']}/readyz"
    triton.stop()
    try:
        ids = [r.json()["id"] for r in upload_all(pipeline, scene_images(6, seed=10010, tag=TAG))]
        time.sleep(5)
        assert [image_status(pipeline, i)["status"] for i in ids] == ["received"] * 6
        assert requests.get(caption_ready, timeout=10).status_code == 503
    finally:
        triton.start()
    statuses = wait_for(pipeline, ids, done=lambda s: s["status"] in ("indexed", "failed"), timeout_s=180)
    assert all(s["status"] == "indexed" for s in statuses.values())
    ready = requests.get(caption_ready, timeout=10)
    assert ready.status_code == 200, ready.text
    assert not set(ids) & {key for key, _ in read_since(kafka, "images.uploaded.dlq", dlq_start)}


def test_an_oversized_body_is_refused_before_it_is_read(pipeline) -> None:
    import http.client

    host, port = pipeline.ingest_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    # Announce 1 GiB but send nothing: the answer must come from the headers alone.
    connection.putrequest("POST", "/v1/images")
    connection.putheader("X-API-Key", pipeline.API_KEY)
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(1 << 30))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert b'"file_too_large"' in response.read()
    connection.close()
