"""Fakes of the stage runtime's ports: an S3 client (under the real ObjectStore and ImageRecords),
a Kafka producer, a consumer and its messages. ``log`` records every side effect in order."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import Future

from botocore.exceptions import ClientError

from captioning_common.events import encode_event
from captioning_common.kafka.producer import Delivery, ProduceError
from captioning_common.records import ImageRecords
from captioning_common.settings import S3Settings
from captioning_common.storage import ObjectStore


def image_id_of(text: str) -> str:
    """A well-formed image id derived from ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()


def _error(code: str, status: int, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class FakeS3Client:
    """put/get/head/delete_object with ETags and the If-Match / If-None-Match conditions."""

    def __init__(self, log: list) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.log = log
        self.version = 0

    def head_bucket(self, Bucket: str) -> dict:
        return {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str = "", Metadata=None, IfMatch=None, IfNoneMatch=None) -> dict:
        current = self.objects.get(Key)
        if (IfNoneMatch == "*" and current is not None) or (IfMatch is not None and (current is None or f'"{current[1]}"' != IfMatch)):
            raise _error("PreconditionFailed", 412, "PutObject")
        self.version += 1
        etag = f"etag{self.version}"
        self.objects[Key] = (Body, etag)
        self.log.append(("put", Key))
        return {"ETag": f'"{etag}"'}

    def get_object(self, Bucket: str, Key: str) -> dict:
        if Key not in self.objects:
            raise _error("NoSuchKey", 404, "GetObject")
        body, etag = self.objects[Key]
        return {"Body": io.BytesIO(body), "ETag": f'"{etag}"', "ContentLength": len(body)}

    def head_object(self, Bucket: str, Key: str) -> dict:
        if Key not in self.objects:
            raise _error("404", 404, "HeadObject")
        body, etag = self.objects[Key]
        return {"ContentLength": len(body), "ETag": f'"{etag}"'}

    def delete_object(self, Bucket: str, Key: str) -> dict:
        self.objects.pop(Key, None)
        self.log.append(("delete", Key))
        return {}


def fake_records(log: list) -> ImageRecords:
    """The real ImageRecords over the real ObjectStore over a FakeS3Client."""
    return ImageRecords(ObjectStore(S3Settings(bucket="test"), client=FakeS3Client(log)))


class FakeProducer:
    """Acknowledges every event at once, or fails the ones whose topic is in ``failing``."""

    def __init__(self, log: list) -> None:
        self.log = log
        self.sent: list[tuple[str, object, str]] = []
        self.failing: set[str] = set()

    def produce(self, topic: str, event, key: str, subject: str | None = None) -> Future:
        future: Future = Future()
        if topic in self.failing:
            future.set_exception(ProduceError.__new__(ProduceError))
            return future
        self.sent.append((topic, event, key))
        self.log.append(("produce", topic, key))
        future.set_result(Delivery(topic, 0, len(self.sent)))
        return future

    def send(self, topic: str, event, key: str, subject: str | None = None, timeout: float | None = None) -> Delivery:
        return self.produce(topic, event, key, subject).result(timeout)

    def close(self) -> None:
        return None


class FakeError:
    """A KafkaError as a consumed message carries it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def str(self) -> str:
        return self.text


class FakeMessage:
    """A consumed Kafka message."""

    def __init__(self, topic: str, offset: int, event=None, key: str = "", subject: str | None = None, partition: int = 0,
                 value: bytes | None = None, headers=None, error: FakeError | None = None) -> None:
        if event is not None:
            headers, value = encode_event(event, source="test", subject=subject if subject is not None else key)
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._value, self._headers, self._error = key.encode(), value, headers, error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self):
        return self._headers

    def error(self):
        return self._error


class FakeConsumer:
    """Records commits and seeks; owns every partition."""

    def __init__(self, log: list) -> None:
        self.log = log
        self.commits: dict[tuple[str, int], int] = {}
        self.seeks: list[dict[tuple[str, int], int]] = []
        self.refuse_commits = 0

    def commit(self, offsets: dict[tuple[str, int], int]) -> bool:
        if self.refuse_commits:
            self.refuse_commits -= 1
            return False
        self.commits.update(offsets)
        self.log.append(("commit", dict(offsets)))
        return True

    def seek(self, offsets: dict[tuple[str, int], int]) -> None:
        self.seeks.append(dict(offsets))

    def reachable(self) -> bool:
        return True

    def lag(self) -> dict:
        return {}

    def close(self) -> None:
        return None
