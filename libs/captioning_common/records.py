"""Where each image's original and per-stage records live in the bucket, and its status.

Layout (``<id>`` is the lowercase hex SHA-256 of the original bytes):

- ``originals/<id>``: the uploaded bytes, content-addressed;
- ``records/<id>/received.json``: written by ingest; creating it is the claim that
  starts exactly one run per distinct image;
- ``records/<id>/captions.json``: the caption record, written by the caption service;
- ``records/<id>/moderation.json``: the latest verdict, written by moderation;
- ``records/<id>/index.json``: written by indexing once the image is searchable;
- ``records/<id>/failure.json``: written by any stage that dead-lettered the image.

Every stage writes its record before it produces its event, so the status read
from these objects never runs behind the topics.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from captioning_common.storage import ObjectStore, ObjectTooLarge, read_failure

log = logging.getLogger(__name__)

STAGES = ("received", "captions", "moderation", "index", "failure")
_STATUS_BY_STAGE = (("index", "indexed"), ("moderation", "moderated"), ("captions", "captioned"), ("received", "received"))


IMAGE_ID_PATTERN = r"^[0-9a-f]{64}$"
_IMAGE_ID = re.compile(IMAGE_ID_PATTERN)


def is_image_id(text: str) -> bool:
    """True for a well-formed image id (64 lowercase hex characters)."""
    return bool(_IMAGE_ID.fullmatch(text))


def _checked(image_id: str) -> str:
    if not is_image_id(image_id):
        raise ValueError(f"image id {image_id[:80]!r} is not 64 lowercase hex characters")
    return image_id


class RecordConflict(RuntimeError):
    """A conditional write lost a race: read the record again and decide again."""


def original_key(image_id: str) -> str:
    """Content-addressed key of an original; ValueError for a malformed image id."""
    return f"originals/{_checked(image_id)}"


def record_key(image_id: str, stage: str) -> str:
    """Key of one stage's JSON record of an image; ValueError for a malformed id or unknown stage."""
    _checked(image_id)
    if stage not in STAGES:
        raise ValueError(f"unknown record stage {stage!r}")
    return f"records/{image_id}/{stage}.json"


class ImageRecords:
    """Reads and writes the per-stage JSON records of images."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._readers = ThreadPoolExecutor(len(STAGES), thread_name_prefix="records")

    def put(self, image_id: str, stage: str, record: dict[str, Any]) -> None:
        """Write (or overwrite) a stage record."""
        self.store.put(record_key(image_id, stage), _encode(record), content_type="application/json")

    def create(self, image_id: str, stage: str, record: dict[str, Any]) -> bool:
        """Write a stage record only if none exists (atomic in the store); False when one did."""
        return self.store.create(record_key(image_id, stage), _encode(record), content_type="application/json")

    def get(self, image_id: str, stage: str) -> dict[str, Any] | None:
        """A stage record, or None when that stage has not written one (or one over ``max_record_bytes``)."""
        try:
            return json.loads(self.store.get(record_key(image_id, stage), max_bytes=self.store.settings.max_record_bytes))
        except ObjectTooLarge as exc:
            log.warning("record ignored: %s", read_failure(self.store.bucket, exc)[1])
            return None
        except KeyError:
            return None

    def read(self, image_id: str, stage: str) -> tuple[dict[str, Any] | None, str]:
        """(a stage record or None, its version: the ETag, "" when absent), for ``put_if``;
        ObjectTooLarge over ``max_record_bytes``."""
        found = self.store.get_versioned(record_key(image_id, stage), self.store.settings.max_record_bytes)
        if found is None:
            return None, ""
        data, version = found
        return json.loads(data), version

    def put_if(self, image_id: str, stage: str, record: dict[str, Any], version: str) -> None:
        """Write a stage record only if it is still at ``version`` ("" : still absent); RecordConflict otherwise."""
        if self.store.put_if(record_key(image_id, stage), _encode(record), version, content_type="application/json") is None:
            raise RecordConflict(f"records/{image_id}/{stage}.json changed since it was read")

    def delete(self, image_id: str, stage: str) -> None:
        """Remove a stage record (no error when absent)."""
        self.store.delete(record_key(image_id, stage))

    def all(self, image_id: str) -> dict[str, dict[str, Any]]:
        """Every stage record of an image that exists, read concurrently."""
        found = dict(zip(STAGES, self._readers.map(lambda stage: self.get(image_id, stage), STAGES)))
        return {stage: record for stage, record in found.items() if record is not None}


def status_of(records: dict[str, dict[str, Any]]) -> str:
    """``failed``, ``indexed``, ``moderated``, ``captioned`` or ``received`` from an image's records."""
    if "failure" in records:
        return "failed"
    for stage, status in _STATUS_BY_STAGE:
        if stage in records:
            return status
    raise ValueError("an image without a received record has no status")


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode()
