"""Turning a validated image into a stored original and one ``images.uploaded`` event.

Both entry points (HTTP upload and claim-check submission) go through ``Intake.accept``:

1. the original is stored under its content address (same bytes, same key);
2. the ``received`` record is created (state ``pending``) only if absent: this
   claim makes one run per distinct image, even for concurrent duplicate uploads;
3. ``images.uploaded`` is produced and acknowledged by the broker; only then is
   the record marked ``queued`` and the image reported accepted.

Only a ``queued`` claim is done. A concurrent duplicate that finds a claim
``pending`` waits up to ``pending_wait_s`` for it to become ``queued``; a claim
still ``pending`` after that (producing failed, or the process died before the
broker's acknowledgement) is finished by whoever finds it: it produces the
claim's event and marks it ``queued``, answering as a started run. Two events for one image are harmless, every stage downstream being
idempotent per image id; an image never stays unproduced behind its claim.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from captioner.vocabulary import LANGUAGES as SUPPORTED_LANGUAGES
from captioning_common.events import timestamp_from_iso
from captioning_common.kafka.producer import EventProducer
from captioning_common.kafka.topics import StageTopics
from captioning_common.records import ImageRecords, original_key
from captioning_events.v1.common_pb2 import ObjectRef
from captioning_events.v1.image_pb2 import ImageUploaded
from services.ingest.validation import ValidImage

log = logging.getLogger(__name__)


class InvalidRequest(ValueError):
    """A request field that is not acceptable (machine-readable code and message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Submission:
    """What a client asked for besides the image."""

    languages: tuple[str, ...] = SUPPORTED_LANGUAGES
    client_ref: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = "upload"


def parse_languages(values: list[str]) -> tuple[str, ...]:
    """Languages from repeated and/or comma-separated values; all supported ones when empty."""
    languages = []
    for value in values:
        for language in value.split(","):
            language = language.strip().lower()
            if not language:
                continue
            if language not in SUPPORTED_LANGUAGES:
                raise InvalidRequest("unsupported_language", f"language {language!r} is not supported: use {', '.join(SUPPORTED_LANGUAGES)}")
            if language not in languages:
                languages.append(language)
    return tuple(languages) or SUPPORTED_LANGUAGES


def check_metadata(metadata: dict, client_ref: str) -> None:
    """Reject metadata that is not a small string-to-string map, or an overlong client_ref."""
    if len(client_ref) > 256:
        raise InvalidRequest("invalid_client_ref", "client_ref is longer than 256 characters")
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise InvalidRequest("invalid_metadata", "metadata must be a JSON object of string values")
    if len(metadata) > 32 or any(len(k) > 128 or len(v) > 1024 for k, v in metadata.items()):
        raise InvalidRequest("invalid_metadata", "metadata allows at most 32 keys of 128 characters with values of 1024")
    if not all(_is_unicode(text) for text in (client_ref, *metadata, *metadata.values())):
        # JSON escapes can spell lone surrogates ("\ud800"), which no record or event can encode.
        raise InvalidRequest("invalid_metadata", "metadata and client_ref must be Unicode text: a lone surrogate escape is not")


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class Intake:
    """Stores originals, claims runs and produces ``images.uploaded``."""

    def __init__(self, records: ImageRecords, producer: EventProducer, pending_wait_s: float = 2.0) -> None:
        self.records = records
        self.store = records.store
        self.producer = producer
        self.pending_wait_s = pending_wait_s
        self.topic = StageTopics("ingest").output(ImageUploaded)

    def accept(self, data: bytes, image: ValidImage, submission: Submission) -> tuple[dict, bool]:
        """(the received record, True when this call started the run) for a validated image."""
        key = original_key(image.image_id)
        self.store.create(key, data, content_type=image.content_type)  # content-addressed: one already there is these bytes
        received = {
            "image_id": image.image_id,
            "object": {"bucket": self.store.bucket, "key": key},
            "content_type": image.content_type,
            "size_bytes": image.size_bytes,
            "width": image.width,
            "height": image.height,
            "languages": list(submission.languages),
            "client_ref": submission.client_ref,
            "metadata": submission.metadata,
            "source": submission.source,
            "received_at": datetime.now(timezone.utc).isoformat(),
            "state": "pending",
        }
        claim = self._claim(received)
        if claim.get("state") != "pending":
            return claim, False
        # A failure leaves the claim pending: the next attempt for these bytes produces it.
        delivery = self.producer.send(self.topic, uploaded_event(claim), key=image.image_id)
        claim |= {"state": "queued", "event": {"topic": delivery.topic, "partition": delivery.partition, "offset": delivery.offset}}
        self.records.put(image.image_id, "received", claim)
        return claim, True

    def _claim(self, received: dict) -> dict:
        """The image's ``received`` record: ours when we created it, else the one already there."""
        image_id = received["image_id"]
        if self.records.create(image_id, "received", received):
            return received
        deadline = time.monotonic() + self.pending_wait_s
        existing = self.records.get(image_id, "received")
        while existing is not None and existing.get("state") == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)  # a concurrent duplicate is most likely producing it right now
            existing = self.records.get(image_id, "received")
        if existing is None:  # deleted since our create failed: claim it anyway (a second event is harmless)
            self.records.put(image_id, "received", received)
            return received
        if existing.get("state") == "pending":
            log.info("producing a claim left pending", extra={"image_id": image_id})
        return existing


def uploaded_event(received: dict) -> ImageUploaded:
    """The ImageUploaded event of a received record."""
    return ImageUploaded(
        image_id=received["image_id"],
        object=ObjectRef(**received["object"]),
        content_type=received["content_type"],
        size_bytes=received["size_bytes"],
        width=received["width"],
        height=received["height"],
        languages=received["languages"],
        client_ref=received["client_ref"],
        metadata=received["metadata"],
        uploaded_at=timestamp_from_iso(received["received_at"]),
    )
