"""Intake's claim protocol with in-memory records and producer: one run per image, none lost to a crash."""

from __future__ import annotations

import pytest

from services.ingest.intake import Intake, Submission
from services.ingest.validation import validate_image
from services.ingest.settings import IngestSettings
from tests.unit.ingest_fakes import FakeProducer, FakeRecords, png_bytes

SETTINGS = IngestSettings()


class Killed(BaseException):
    """Stands for the process dying (SIGKILL) while it waits for the broker: no handler runs."""


def test_a_claim_left_pending_by_a_killed_process_is_produced_by_the_next_attempt() -> None:
    records, data = FakeRecords(), png_bytes()
    image = validate_image(data, SETTINGS)
    dying = FakeProducer()
    dying.fail = Killed()
    with pytest.raises(Killed):
        Intake(records, dying).accept(data, image, Submission(("en",), "first"))
    assert records.get(image.image_id, "received")["state"] == "pending"

    producer = FakeProducer()
    received, started = Intake(records, producer).accept(data, image, Submission(("en",), "retry"))
    assert started
    assert [(topic, key) for topic, key, _ in producer.sent] == [("images.uploaded", image.image_id)]
    assert list(producer.sent[0][2].languages) == ["en"]
    stored = records.get(image.image_id, "received")
    assert stored["state"] == "queued" and stored["event"] == received["event"] == {"topic": "images.uploaded", "partition": 0, "offset": 0}


def test_a_failed_produce_answers_an_error_and_the_retry_starts_the_run() -> None:
    records, producer, data = FakeRecords(), FakeProducer(), png_bytes(shade=7)
    image = validate_image(data, SETTINGS)
    producer.fail = RuntimeError("broker unreachable")
    with pytest.raises(RuntimeError):
        Intake(records, producer).accept(data, image, Submission())
    producer.fail = None
    _, started = Intake(records, producer).accept(data, image, Submission())
    assert started and len(producer.sent) == 1
    assert records.get(image.image_id, "received")["state"] == "queued"


def test_a_queued_image_is_a_duplicate_and_produces_nothing() -> None:
    records, producer, data = FakeRecords(), FakeProducer(), png_bytes(shade=9)
    image = validate_image(data, SETTINGS)
    first, started = Intake(records, producer).accept(data, image, Submission())
    again, started_again = Intake(records, producer).accept(data, image, Submission(client_ref="other"))
    assert (started, started_again) == (True, False)
    assert again == first and len(producer.sent) == 1
