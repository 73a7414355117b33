"""The OpenAPI of the upload API: response bodies, error statuses, and the constraints of its form fields.

The routes answer plain JSON; these declarations are what schemathesis holds them to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from captioning_common.api_docs import BODY_TOO_LARGE, INVALID_REQUEST, STRIPPED, UNAUTHORIZED, error_responses
from captioning_common.images import SUPPORTED

IMAGE_ID_PATTERN = r"^[0-9a-f]{64}$"
Language = Literal["en", "ko"]
Verdict = Literal["approve", "reject", "review"]


class EventRef(BaseModel):
    """Where the ``images.uploaded`` event of the image was written."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class Accepted(BaseModel):
    """A new image, queued for captioning."""

    id: str = Field(pattern=IMAGE_ID_PATTERN, description="Lowercase hex SHA-256 of the uploaded bytes.")
    status: Literal["received"]
    status_url: str = Field(description="Where to read its status: `/v1/images/{id}`.")
    event: EventRef


class CaptionView(BaseModel):
    """The caption of an image in one language."""

    text: str
    keywords: list[str]
    score: float


class ModelRef(BaseModel):
    """The captioning model that wrote the captions."""

    name: str
    version: str


class Reason(BaseModel):
    """One reason of a moderation verdict."""

    code: str
    detail: str
    score: float


class Failure(BaseModel):
    """Why a stage dead-lettered the image."""

    stage: str
    code: str
    reason: str


class ImageStatus(BaseModel):
    """An image's status and results so far; the fields after ``verdict`` appear once their stage has run."""

    id: str = Field(pattern=IMAGE_ID_PATTERN)
    status: Literal["received", "captioned", "moderated", "indexed", "failed"]
    received_at: datetime
    content_type: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    size_bytes: int = Field(ge=1)
    languages: list[Language]
    client_ref: str
    metadata: dict[str, str]
    captions: dict[str, CaptionView] = Field(description="By language.")
    keywords: list[str]
    hashtags: list[str]
    verdict: Verdict | None
    model: ModelRef | None = None
    captioned_at: datetime | None = None
    tags: list[dict[str, Any]] | None = None
    objects: list[dict[str, Any]] | None = None
    text_lines: list[dict[str, Any]] | None = None
    route: str | None = None
    moderation_reasons: list[Reason] | None = None
    moderated_at: datetime | None = None
    reviewer: str | None = None
    indexed_at: datetime | None = None
    failure: Failure | None = None


class ReviewAccepted(BaseModel):
    """A review decision, signed and queued for the moderation service."""

    id: str = Field(pattern=IMAGE_ID_PATTERN)
    decision: Literal["approve", "reject"]
    reviewer: str = Field(description="The reviewer the `X-API-Key` belongs to.")


# What ``intake.parse_languages`` accepts in one form value: comma-separated `en` / `ko`, any
# case (KELVIN SIGN lowers to "k"), each item padded with what ``str.strip`` removes, empty items skipped.
_SPACE = f"[{STRIPPED}]*"
_ITEM = rf"{_SPACE}(?:(?:[eE][nN]|[kK\u212a][oO]){_SPACE})?"
LANGUAGES_PATTERN = rf"^{_ITEM}(?:,{_ITEM})*$"

LANGUAGES_SCHEMA = {"items": {"type": "string", "pattern": LANGUAGES_PATTERN}}
FILE_SCHEMA = {"format": "binary", "minLength": 1}  # `empty_file` otherwise
CLIENT_REF_SCHEMA = {"maxLength": 256}
METADATA_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "string", "maxLength": 1024},
    "propertyNames": {"maxLength": 128},
    "maxProperties": 32,
    "default": {},
}
"""``intake.check_metadata``'s limits; the part is JSON text."""
IMAGE_ID_SCHEMA = {"pattern": IMAGE_ID_PATTERN, "description": "Lowercase hex SHA-256 of the image's bytes."}

_BUSY = "`busy`: too many requests like this one are in progress; retry after `Retry-After` seconds."

# OpenAPI links: the id an answer names is the image of the status and review routes.
_BY_ID = {"image_id": "$response.body#/id"}
_READ_STATUS = {"operationRef": "#/paths/~1v1~1images~1{image_id}/get", "parameters": _BY_ID}
_DECIDE_REVIEW = {"operationRef": "#/paths/~1v1~1reviews~1{image_id}/post", "parameters": _BY_ID}

UPLOAD_RESPONSES = {
    202: {"model": Accepted, "description": "A new image: stored and queued for captioning.", "links": {"ReadStatus": _READ_STATUS}},
    200: {
        "model": ImageStatus,
        "description": "An image uploaded before (the same bytes): its status.",
        "links": {"ReadStatus": _READ_STATUS, "DecideReview": _DECIDE_REVIEW},
    },
    **error_responses({
        400: f"`empty_file`, `unsupported_language`, `invalid_metadata`, `invalid_client_ref`; {INVALID_REQUEST}",
        401: UNAUTHORIZED,
        403: "`forbidden`: a reviewer key cannot upload.",
        413: f"{BODY_TOO_LARGE} `too_many_pixels`: width x height is over the pixel limit (read from the header, nothing decoded).",
        415: f"`unsupported_format`: the bytes are none of {SUPPORTED} (the format is sniffed, never taken from the declared type).",
        422: "`corrupt_image`: a supported format whose data does not decode; `image_too_small`: a side under the minimum.",
        503: f"{_BUSY} `unavailable`: the image could not be stored or queued; retry.",
    }),
}
STATUS_RESPONSES = {
    200: {"model": ImageStatus, "description": "The image's status and results so far.", "links": {"DecideReview": _DECIDE_REVIEW}},
    **error_responses({
        400: f"`invalid_id`: not 64 lowercase hex characters; {INVALID_REQUEST}",
        401: UNAUTHORIZED,
        404: "`not_found`: no image has this id.",
        413: BODY_TOO_LARGE,
        503: f"{_BUSY} `unavailable`: the bucket could not be read; retry.",
    }),
}
REVIEW_RESPONSES = {
    202: {"model": ReviewAccepted, "description": "The decision is signed and queued for the moderation service."},
    **error_responses({
        400: f"`invalid_id`: not 64 lowercase hex characters; {INVALID_REQUEST}",
        401: UNAUTHORIZED,
        403: "`forbidden`: an upload key cannot decide reviews; use a reviewer key.",
        409: "`not_in_review`: the image is unknown or not held for review.",
        413: BODY_TOO_LARGE,
        503: f"{_BUSY} `reviews_unavailable`: no signing key is configured; `unavailable`: the bucket or Kafka failed; retry.",
    }),
}
