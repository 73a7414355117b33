"""A dead letter over the brokers' record limit keeps its original value in S3 and fits."""

from __future__ import annotations

from captioning_common.kafka.dead_letter import dead_letter_object_key, fit_dead_letter
from captioning_events.v1.dead_letter_pb2 import DeadLetter

LIMIT = 100_000


class FakeStore:
    """ObjectStore's put, in memory."""

    bucket = "captioning"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", metadata=None) -> str:
        self.objects[key] = data
        return "etag"


def letter(value: bytes, error_message: str = "bad image") -> DeadLetter:
    return DeadLetter(
        stage="caption", source_topic="images.uploaded", source_partition=3, source_offset=41,
        original_key=b"abc", original_value=value, original_headers={"ce_type": "io.captioning.image.uploaded"},
        error_code="image_undecodable", error_message=error_message, image_id="abc",
    )


def test_a_letter_within_the_limit_is_left_alone() -> None:
    store = FakeStore()
    small = letter(b"v" * 1000)
    assert fit_dead_letter(small, store, LIMIT) == small
    assert store.objects == {}


def test_an_oversized_value_moves_to_the_store() -> None:
    store = FakeStore()
    value = b"v" * LIMIT
    fitted = fit_dead_letter(letter(value), store, LIMIT)
    assert fitted.ByteSize() <= LIMIT
    assert fitted.original_value == b"" and fitted.HasField("original_object")
    assert fitted.original_object.bucket == "captioning"
    assert fitted.original_object.key == dead_letter_object_key("images.uploaded", 3, 41) == "dead-letters/images.uploaded/3-41"
    assert store.objects[fitted.original_object.key] == value
    assert (fitted.error_message, fitted.original_headers, fitted.original_key) == ("bad image", {"ce_type": "io.captioning.image.uploaded"}, b"abc")


def test_a_huge_error_message_is_truncated() -> None:
    store = FakeStore()
    fitted = fit_dead_letter(letter(b"v" * 10, error_message="e" * (2 * LIMIT)), store, LIMIT)
    assert fitted.ByteSize() <= LIMIT
    assert fitted.error_message.startswith("eeee") and fitted.error_message.endswith(f"(truncated from {2 * LIMIT} bytes)")
    assert fitted.original_object.key in store.objects, "the value moved first"


def test_huge_headers_are_dropped_as_a_last_resort() -> None:
    store = FakeStore()
    big = letter(b"v")
    big.original_headers["x-junk"] = "j" * (2 * LIMIT)
    fitted = fit_dead_letter(big, store, LIMIT)
    assert fitted.ByteSize() <= LIMIT
    assert dict(fitted.original_headers) == {} and "original headers dropped" in fitted.error_message


def test_a_huge_key_is_dropped_after_the_headers() -> None:
    store = FakeStore()
    big = letter(b"v")
    big.original_key = b"k" * (2 * LIMIT)
    fitted = fit_dead_letter(big, store, LIMIT)
    assert fitted.ByteSize() + len(fitted.original_key) <= LIMIT
    assert fitted.original_key == b"" and f"original key dropped ({2 * LIMIT} bytes)" in fitted.error_message
