"""The index writer's lease: one holder at a time, taken over only once expired."""

from __future__ import annotations

import time

from captioning_common.settings import S3Settings
from captioning_common.storage import ObjectStore
from services.indexing.writer_lease import WriterLease
from tests.unit.stages.fakes import FakeS3Client


def leases(ttl_s: float = 30.0) -> tuple[WriterLease, WriterLease]:
    store = ObjectStore(S3Settings(bucket="test"), client=FakeS3Client([]))
    return WriterLease(store, "index/captions_v2.writer.json", ttl_s, "a"), WriterLease(store, "index/captions_v2.writer.json", ttl_s, "b")


def test_only_one_replica_holds_the_lease_and_the_holder_renews_it() -> None:
    first, second = leases()
    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    assert first.acquire()  # renewal
    first.release()
    assert second.acquire() and not first.held()


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_renew_it() -> None:
    first, second = leases(ttl_s=0.05)
    assert first.acquire()
    time.sleep(0.1)
    assert not first.held()
    assert second.acquire()
    assert not first.acquire()


def test_two_replicas_racing_for_a_free_lease_cannot_both_win() -> None:
    first, second = leases()
    current, version = first._read()
    assert current is None and version == ""
    assert first.acquire()
    second._read = lambda: (None, "")  # second read before first wrote: its conditional create must fail
    assert not second.acquire()
