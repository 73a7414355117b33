"""Real S3-compatible server: reads are bounded in size, and keys the store refuses fail for good on HEAD as on GET."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from captioning_common.records import ImageRecords
from captioning_common.settings import S3Settings
from captioning_common.storage import ObjectStore, ObjectTooLarge, ObjectUnreadable, read_failure

LONG_KEY = "tests/" + "k" * 1094  # 1,100 bytes: over the 1,024-byte limit on S3 keys


def test_get_refuses_an_object_over_max_bytes_without_reading_it(s3: S3Settings) -> None:
    store = ObjectStore(s3)
    key = f"tests/{uuid.uuid4().hex}"
    store.put(key, b"x" * 5000)
    try:
        assert store.get(key, max_bytes=5000) == b"x" * 5000
        with pytest.raises(ObjectTooLarge) as caught:
            store.get(key, max_bytes=4999)
        assert (caught.value.size, caught.value.limit) == (5000, 4999)
        assert isinstance(caught.value, KeyError), "a permanent failure, like a missing object"
        code, message = read_failure(s3.bucket, caught.value)
        assert code == "object_too_large"
        assert message == f"s3://{s3.bucket}/{key} has 5000 bytes; the limit is 4999"
        assert store.get(key) == b"x" * 5000, "no limit unless asked"
    finally:
        store.delete(key)


def test_a_key_over_1024_bytes_is_unreadable_for_good_on_head_and_get(s3: S3Settings) -> None:
    store = ObjectStore(s3.model_copy(update={"max_attempts": 1}))
    assert len(LONG_KEY.encode()) == 1100
    with pytest.raises(ObjectUnreadable) as on_head:
        store.head(LONG_KEY)
    assert read_failure(s3.bucket, on_head.value)[0] == "object_unreadable"
    with pytest.raises(ObjectUnreadable) as on_get:
        store.get(LONG_KEY)
    assert read_failure(s3.bucket, on_get.value)[0] == "object_unreadable"
    with pytest.raises(ObjectUnreadable):
        store.head("a//b")
    assert store.head(f"tests/{uuid.uuid4().hex}") is None


def test_a_record_over_max_record_bytes_reads_as_absent(s3: S3Settings, caplog: pytest.LogCaptureFixture) -> None:
    store = ObjectStore(s3.model_copy(update={"max_record_bytes": 100}))
    records = ImageRecords(store)
    image_id = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    records.put(image_id, "received", {"note": "small"})
    records.put(image_id, "captions", {"note": "x" * 200})
    try:
        assert records.get(image_id, "received") == {"note": "small"}
        assert records.get(image_id, "captions") is None, "an oversized record is never parsed"
        size = len(json.dumps({"note": "x" * 200}).encode())
        assert f"captions.json has {size} bytes; the limit is 100" in caplog.text
    finally:
        records.delete(image_id, "received")
        records.delete(image_id, "captions")
