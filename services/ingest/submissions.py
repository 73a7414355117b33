"""Claim-check submissions: platforms that stream through Kafka reference an object already in the bucket.

Contract (topic ``images.submitted``, event ``ImageSubmitted``, key: the
submitter's ``client_ref``): the platform puts the image into the pipeline's
bucket under the submissions prefix (``incoming/`` by default), then produces the
event. Ingest reads the object once (bounded by the upload size limit) and
validates those bytes exactly like an upload; an accepted image continues as
``images.uploaded`` (the platform's object is left untouched), a rejected one
goes to ``images.submitted.dlq`` with the same error code an upload would get.
``Intake.accept`` makes the image's effects durable before the offset is committed.
"""

from __future__ import annotations

from collections.abc import Sequence

from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.stage import Inbound, Outcome
from captioning_common.storage import ObjectTooLarge, read_failure
from captioning_events.v1.image_pb2 import ImageSubmitted
from services.ingest.intake import Intake, InvalidRequest, Submission, check_metadata, parse_languages
from services.ingest.settings import IngestSettings
from services.ingest.validation import ImageRejected, validate_image

MAX_KEY_BYTES = 1024  # the longest S3 object key


class SubmissionStage:
    """Validates and accepts each claim-check event; a rejected one is dead-lettered with its code."""

    name = "ingest"

    def __init__(self, settings: IngestSettings, intake: Intake, metrics: PipelineMetrics) -> None:
        self.settings = settings
        self.intake = intake
        self.store = intake.store
        self.metrics = metrics

    def dependencies(self) -> dict[str, Check]:
        """The bucket."""
        return {"s3": self.store.reachable}

    def handle(self, batch: Sequence[Inbound[ImageSubmitted]]) -> list[Outcome]:
        """One outcome per submission; raises on a transient failure."""
        outcomes = []
        for inbound in batch:
            try:
                outcomes.append(Outcome(result=self._accept(inbound.event)))
            except (InvalidRequest, ImageRejected) as exc:
                self.metrics.error(exc.code)
                outcomes.append(Outcome.failed(exc.code, exc.message, ""))
        return outcomes

    def _accept(self, event: ImageSubmitted) -> str:
        ref = event.object
        if ref.bucket != self.store.bucket:
            raise InvalidRequest("foreign_bucket", f"objects must be in bucket {self.store.bucket!r}, not {ref.bucket!r}")
        prefix = self.settings.submissions_prefix
        if not ref.key.startswith(prefix) or ref.key == prefix or len(ref.key.encode()) > MAX_KEY_BYTES:
            raise InvalidRequest("invalid_key", f"key {ref.key[:120]!r} must be under {prefix!r} and at most {MAX_KEY_BYTES} bytes")
        submission = Submission(parse_languages(list(event.languages)), event.client_ref, dict(event.metadata), source="claim-check")
        check_metadata(submission.metadata, submission.client_ref)
        try:
            data = self.store.get(ref.key, max_bytes=self.settings.max_bytes)
        except ObjectTooLarge as exc:
            raise ImageRejected("file_too_large", f"the object has more than {exc.limit} bytes", 413) from None
        except KeyError as exc:
            raise InvalidRequest(*read_failure(ref.bucket, exc)) from None
        image = validate_image(data, self.settings)
        _, started = self.intake.accept(data, image, submission)
        return "ok" if started else "duplicate"
