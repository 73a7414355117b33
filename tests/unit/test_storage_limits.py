"""ObjectStore.get stops reading a body that outgrows its limit, even when the length header says less."""

from __future__ import annotations

import io

import pytest
from botocore.response import StreamingBody

from captioning_common.settings import S3Settings
from captioning_common.storage import ObjectStore, ObjectTooLarge, read_failure


class CountingStream(io.BytesIO):
    """A body that remembers how many bytes were read from it."""

    served = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.served += len(chunk)
        return chunk


class LyingClient:
    """get_object answers a body larger than the ContentLength it announces (or none at all)."""

    def __init__(self, body: bytes, announced: int | None) -> None:
        self.stream = CountingStream(body)
        self.announced = announced

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 - boto3's names
        response = {"Body": StreamingBody(self.stream, len(self.stream.getvalue())), "ETag": '"0"'}
        if self.announced is not None:
            response["ContentLength"] = self.announced
        return response


@pytest.mark.parametrize("announced", [10, None])
def test_reading_stops_once_the_body_passes_max_bytes(announced: int | None) -> None:
    client = LyingClient(b"y" * 10_000_000, announced)
    store = ObjectStore(S3Settings(), client=client)
    with pytest.raises(ObjectTooLarge) as caught:
        store.get("big", max_bytes=1000)
    assert caught.value.limit == 1000 and caught.value.size > 1000
    assert client.stream.served == 1001, "reading must stop at the first byte over the limit"
    assert client.stream.closed
    assert read_failure("bucket", caught.value)[0] == "object_too_large"


def test_a_body_within_max_bytes_is_returned_whole() -> None:
    store = ObjectStore(S3Settings(), client=LyingClient(b"z" * 3000, None))
    assert store.get("small", max_bytes=3000) == b"z" * 3000
