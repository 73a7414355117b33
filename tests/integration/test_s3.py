"""Real S3-compatible server: put, create, conditional writes, get, head, list, delete and a presigned GET over plain HTTP."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from captioning_common.settings import S3Settings
from captioning_common.storage import ObjectStore, ObjectTooLarge, ObjectUnreadable, read_failure


def test_round_trip(s3: S3Settings) -> None:
    store = ObjectStore(s3)
    prefix = f"tests/{uuid.uuid4().hex}/"
    payload = bytes(range(256)) * 1000
    etag = store.put(prefix + "a.bin", payload, content_type="application/octet-stream", metadata={"origin": "test"})
    store.put(prefix + "b.txt", b"hello", content_type="text/plain")

    assert store.get(prefix + "a.bin") == payload
    assert etag == hashlib.md5(payload).hexdigest()
    info = store.head(prefix + "a.bin")
    assert info is not None and info.size == len(payload) and info.content_type == "application/octet-stream"
    assert store.head(prefix + "missing") is None
    with pytest.raises(KeyError):
        store.get(prefix + "missing")
    assert sorted(o.key for o in store.list(prefix)) == [prefix + "a.bin", prefix + "b.txt"]

    url = store.presigned_get_url(prefix + "a.bin", expires_s=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == payload

    store.delete(prefix + "a.bin")
    store.delete(prefix + "b.txt")
    assert list(store.list(prefix)) == []


def test_create_writes_only_where_nothing_is(s3: S3Settings) -> None:
    store = ObjectStore(s3)
    key = f"tests/{uuid.uuid4().hex}/original"
    assert store.create(key, b"first", content_type="image/png") is True
    assert store.create(key, b"second") is False
    assert store.get(key) == b"first" and store.head(key).content_type == "image/png"
    store.delete(key)


def test_conditional_writes_hold_only_at_the_version_read(s3: S3Settings) -> None:
    store = ObjectStore(s3)
    key = f"tests/{uuid.uuid4().hex}/record.json"
    assert store.get_versioned(key, max_bytes=100) is None
    first = store.put_if(key, b"v1", "")
    assert first and store.put_if(key, b"late create", "") is None
    assert store.get_versioned(key, max_bytes=100) == (b"v1", first)
    second = store.put_if(key, b"v2", first)
    assert second and second != first
    assert store.put_if(key, b"stale", first) is None  # written by someone else since ``first`` was read
    assert store.get_versioned(key, max_bytes=100) == (b"v2", second)
    with pytest.raises(ObjectTooLarge):
        store.get_versioned(key, max_bytes=1)
    store.delete(key)


def test_list_follows_pagination(s3: S3Settings) -> None:
    store = ObjectStore(s3)
    prefix = f"tests/{uuid.uuid4().hex}/"
    keys = [f"{prefix}{i:05d}" for i in range(1100)]  # more than one 1000-key page
    for key in keys:
        store.put(key, b"x")
    assert [o.key for o in store.list(prefix)] == keys
    store.client.delete_objects(Bucket=store.bucket, Delete={"Objects": [{"Key": k} for k in keys[:1000]]})
    store.client.delete_objects(Bucket=store.bucket, Delete={"Objects": [{"Key": k} for k in keys[1000:]]})


def test_unsigned_and_tampered_requests_are_refused(s3: S3Settings) -> None:
    store = ObjectStore(s3)
    key = f"tests/{uuid.uuid4().hex}"
    store.put(key, b"secret")
    url = store.presigned_get_url(key, expires_s=60)
    for bad in (url.split("?")[0], url.replace("X-Amz-Signature=", "X-Amz-Signature=0")):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(bad, timeout=10)
        assert error.value.code == 403
    wrong = ObjectStore(s3.model_copy(update={"secret_access_key": SecretStr("not-the-secret"), "max_attempts": 1}))
    with pytest.raises(Exception, match="SignatureDoesNotMatch|InvalidAccessKeyId|403"):
        wrong.get(key)
    store.delete(key)


def test_invalid_keys_are_unreadable_for_good_but_bad_credentials_are_not(s3) -> None:
    store = ObjectStore(s3)
    with pytest.raises(ObjectUnreadable) as caught:
        store.get("a//b")
    assert read_failure(s3.bucket, caught.value)[0] == "object_unreadable"
    with pytest.raises(KeyError) as missing:
        store.get("no/such/object")
    assert read_failure(s3.bucket, missing.value) == ("object_missing", f"no object s3://{s3.bucket}/no/such/object")
    wrong = ObjectStore(s3.model_copy(update={"secret_access_key": SecretStr("wrong"), "max_attempts": 1}))
    with pytest.raises(ClientError):
        wrong.get("anything")
