"""Claim-check submissions: platforms that stream through Kafka reference an object already in the bucket.

Contract (topic ``images.submitted``, event ``ImageSubmitted``, key: the
submitter's ``client_ref``): the platform puts the image into the pipeline's
bucket under any key outside ``originals/`` and ``records/``, then produces the
event. Ingest validates the object exactly like an upload; an accepted image
continues as ``images.uploaded`` (the platform's object is left untouched), a
rejected one goes to ``images.submitted.dlq`` with the same error code an upload
would get.
"""

from __future__ import annotations

import logging

from confluent_kafka import Message

from captioning_common.events import EnvelopeError, decode_expected
from captioning_common.metrics import PipelineMetrics
from captioning_common.stage import DeadLetters
from captioning_common.storage import read_failure
from captioning_events.v1.image_pb2 import ImageSubmitted
from services.ingest.intake import Intake, InvalidRequest, Submission, check_metadata, parse_languages
from services.ingest.settings import IngestSettings
from services.ingest.validation import ImageRejected, validate_image

log = logging.getLogger(__name__)

INPUT_TOPIC = "images.submitted"


class SubmissionHandler:
    """Validates and accepts each claim-check event of a batch; dead-letters the ones it rejects."""

    def __init__(self, settings: IngestSettings, intake: Intake, dead_letters: DeadLetters, metrics: PipelineMetrics) -> None:
        self.settings = settings
        self.intake = intake
        self.store = intake.store
        self.dead_letters = dead_letters
        self.metrics = metrics

    def handle(self, batch: list[Message]) -> None:
        """Process a batch; raises on transient failures so the batch is retried."""
        self.metrics.observe_batch(len(batch))
        pending = []
        for record in batch:
            try:
                outcome = self._accept(record)
            except (EnvelopeError, InvalidRequest, ImageRejected) as exc:
                code = getattr(exc, "code", "invalid_event")
                self.metrics.error(code)
                pending.append(self.dead_letters.send(record, code, getattr(exc, "message", str(exc)), image_id=""))
                continue
            self.metrics.message(INPUT_TOPIC, outcome)
        for future in pending:
            future.result()

    def _accept(self, record: Message) -> str:
        event = decode_expected(record.headers(), record.value(), ImageSubmitted)
        ref = event.object
        if ref.bucket != self.store.bucket:
            raise InvalidRequest("foreign_bucket", f"objects must be in bucket {self.store.bucket!r}, not {ref.bucket!r}")
        if not ref.key or ref.key.startswith(("originals/", "records/")):
            raise InvalidRequest("invalid_key", f"key {ref.key!r} is empty or inside a reserved prefix")
        submission = Submission(parse_languages(list(event.languages)), event.client_ref, dict(event.metadata), source="claim-check")
        check_metadata(submission.metadata, submission.client_ref)
        info = self.store.head(ref.key)
        if info is None:
            raise InvalidRequest("object_missing", f"no object s3://{ref.bucket}/{ref.key}")
        if info.size > self.settings.max_bytes:
            raise ImageRejected("file_too_large", f"the object has {info.size} bytes; the limit is {self.settings.max_bytes}", 413)
        try:
            data = self.store.get(ref.key)
        except KeyError as exc:
            raise InvalidRequest(*read_failure(ref.bucket, exc)) from None
        image = validate_image(data, self.settings)
        _, started = self.intake.accept(data, image, submission)
        return "ok" if started else "duplicate"
