"""The upload API: ``POST /v1/images``, ``GET /v1/images/{id}``, ``POST /v1/reviews/{id}``.

Every ``/v1`` route needs a valid ``X-API-Key``, checked before any body byte is
read: an upload key uploads and reads status; a reviewer key (bound to a reviewer
name) decides reviews and reads status, and nothing else. Bodies are capped while
they stream, uploads in progress and record reads are bounded (503 ``busy``).
Errors are JSON bodies ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, File, Form, Path, Security, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware import Middleware

from captioning_common.api_docs import API_KEY
from captioning_common.events import timestamp_now
from captioning_common.http_api import ApiError, BoundedExecutor, RequestGuard, api_key_dependency, create_api, is_key, unauthorized
from captioning_common.images import SUPPORTED
from captioning_common.kafka.topics import StageTopics
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.records import ImageRecords
from captioning_common.reviews import reviewer_for, sign_decision
from captioning_common.settings import ServiceSettings
from captioning_events.v1.moderation_pb2 import ReviewDecision, Verdict
from services.ingest.api_schema import (
    CLIENT_REF_SCHEMA,
    FILE_SCHEMA,
    IMAGE_ID_PATTERN,
    IMAGE_ID_SCHEMA,
    LANGUAGES_SCHEMA,
    METADATA_SCHEMA,
    REVIEW_RESPONSES,
    STATUS_RESPONSES,
    UPLOAD_RESPONSES,
)
from services.ingest.image_status import image_view
from services.ingest.intake import Intake, InvalidRequest, Submission, check_metadata, parse_languages
from services.ingest.settings import IngestSettings
from services.ingest.validation import ImageRejected, validate_image

IMAGE_ID = re.compile(IMAGE_ID_PATTERN)
MULTIPART_OVERHEAD = 64 * 1024  # room for the form fields and part headers around the file
FILE_DESCRIPTION = f"{SUPPORTED} bytes (sniffed from the content; of an animation, the first frame is captioned)."
REVIEWS = "/v1/reviews/"
NOT_A_REVIEWER = "an upload key cannot decide reviews: use a reviewer key"


@dataclass(frozen=True)
class Access:
    """Who may call the API: upload keys, reviewer keys (``{key: reviewer name}``) and the key that signs decisions."""

    upload_keys: list[str]
    reviewers: dict[str, str] = field(default_factory=dict)
    signing_key: str = ""

    @classmethod
    def of(cls, service: ServiceSettings) -> Access:
        """The access of ``CAPTIONING_API_KEYS``, ``CAPTIONING_REVIEWER_KEYS`` and ``CAPTIONING_REVIEW_SIGNING_KEY``."""
        return cls(service.api_key_list(), service.reviewers(), service.signing_key())

    def refusal(self, method: str, path: str, key: str | None) -> ApiError | None:
        """Why the headers alone already refuse a ``/v1`` request (401, 403), or None."""
        uploader, reviewer = is_key(key, self.upload_keys), reviewer_for(key, self.reviewers) is not None
        if not (uploader or reviewer):
            return unauthorized()
        if path.startswith(REVIEWS):
            return None if reviewer else ApiError(403, "forbidden", NOT_A_REVIEWER)
        if uploader or (method in ("GET", "HEAD") and path.startswith("/v1/images/")):
            return None
        return ApiError(403, "forbidden", "a reviewer key may decide reviews and read image status, nothing else")


class ReviewRequest(BaseModel):
    """A reviewer's decision on an image held for review; the reviewer is the one the `X-API-Key` belongs to."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["approve", "reject"]
    note: str = Field("", max_length=2000)


def create_app(
    settings: IngestSettings,
    access: Access,
    intake: Intake,
    records: ImageRecords,
    metrics: PipelineMetrics,
    readiness: dict[str, Check],
    lifespan=None,
) -> FastAPI:
    """The FastAPI application of the ingest service."""
    guard = Middleware(
        RequestGuard,
        authorize=access.refusal,
        max_body_bytes=settings.max_bytes + MULTIPART_OVERHEAD,
        concurrency={("POST", "/v1/images"): settings.max_concurrent_uploads},
        on_refusal=metrics.error,
    )
    decisions_topic = StageTopics("ingest").output(ReviewDecision)
    app = create_api(
        "Captioning ingest API",
        "Upload images for captioning, moderation and indexing, read their status, and decide items held for review.",
        metrics,
        readiness,
        lifespan,
        middleware=[guard],
    )
    uploader = api_key_dependency(access.upload_keys)
    reader = api_key_dependency(access.upload_keys + list(access.reviewers))
    readers = BoundedExecutor(settings.status_read_threads, settings.status_read_queue, "status", lambda: metrics.error("busy"))

    def reviewer(x_api_key: Annotated[str | None, Security(API_KEY)] = None) -> str:
        name = reviewer_for(x_api_key, access.reviewers)
        if name is None:
            raise ApiError(403, "forbidden", NOT_A_REVIEWER) if is_key(x_api_key, access.upload_keys) else unauthorized()
        if not access.signing_key:
            raise ApiError(503, "reviews_unavailable", "no review signing key is configured: decisions cannot be signed")
        return name

    @app.post("/v1/images", status_code=202, dependencies=[Depends(uploader)], summary="Upload an image", responses=UPLOAD_RESPONSES)
    async def upload(
        file: Annotated[UploadFile, File(description=FILE_DESCRIPTION, json_schema_extra=FILE_SCHEMA)],
        languages: Annotated[
            list[str], Form(description="`en`, `ko` (repeat or comma-separate); default both.", json_schema_extra=LANGUAGES_SCHEMA)
        ] = [],  # noqa: B006
        client_ref: Annotated[str, Form(description="The caller's own reference, echoed in events.", json_schema_extra=CLIENT_REF_SCHEMA)] = "",
        metadata: Annotated[str, Form(description="JSON object of string values, echoed in events.", json_schema_extra=METADATA_SCHEMA)] = "{}",
    ) -> JSONResponse:
        data = await file.read(settings.max_bytes + 1)
        try:
            submission = Submission(parse_languages(languages), client_ref, _parse_metadata(metadata, client_ref))
            with metrics.time_stage("validate"):
                image = await asyncio.to_thread(validate_image, data, settings)
        except ImageRejected as exc:
            metrics.error(exc.code)
            raise ApiError(exc.http_status, exc.code, exc.message) from None
        except InvalidRequest as exc:
            metrics.error(exc.code)
            raise ApiError(400, exc.code, exc.message) from None
        # Threads of the default pool: at most max_concurrent_uploads uploads get here at once.
        with metrics.time_stage("accept"):
            try:
                received, started = await asyncio.to_thread(intake.accept, data, image, submission)
            except Exception as exc:
                metrics.error("unavailable")
                raise ApiError(503, "unavailable", f"the image could not be queued, retry later: {type(exc).__name__}") from None
        if not started:
            return JSONResponse(image_view(image.image_id, await asyncio.to_thread(records.all, image.image_id)), status_code=200)
        return JSONResponse(
            {"id": image.image_id, "status": "received", "status_url": f"/v1/images/{image.image_id}", "event": received["event"]},
            status_code=202,
        )

    @app.get("/v1/images/{image_id}", dependencies=[Depends(reader)], summary="Status and results of an image", responses=STATUS_RESPONSES)
    async def get_image(image_id: Annotated[str, Path(json_schema_extra=IMAGE_ID_SCHEMA)]) -> JSONResponse:
        _check_id(image_id)
        found = await readers.run(records.all, image_id)
        if "received" not in found:
            raise ApiError(404, "not_found", f"no image {image_id}")
        return JSONResponse(image_view(image_id, found))

    @app.post("/v1/reviews/{image_id}", status_code=202, summary="Decide an image held for review", responses=REVIEW_RESPONSES)
    async def review(image_id: Annotated[str, Path(json_schema_extra=IMAGE_ID_SCHEMA)], decision: ReviewRequest, name: str = Depends(reviewer)) -> JSONResponse:  # noqa: B008
        _check_id(image_id)
        moderation = await readers.run(records.get, image_id, "moderation")
        if moderation is None or moderation["verdict"] != "review":
            raise ApiError(409, "not_in_review", f"image {image_id} is not held for review")
        event = ReviewDecision(
            image_id=image_id,
            verdict=Verdict.VERDICT_APPROVE if decision.verdict == "approve" else Verdict.VERDICT_REJECT,
            reviewer=name,
            note=decision.note,
            decided_at=timestamp_now(),
        )
        event.signature = sign_decision(event, access.signing_key)
        await intake.producer.send_async(decisions_topic, event, key=image_id)
        return JSONResponse({"id": image_id, "decision": decision.verdict, "reviewer": name}, status_code=202)

    return app


def _check_id(image_id: str) -> None:
    if not IMAGE_ID.match(image_id):
        raise ApiError(400, "invalid_id", "an image id is 64 lowercase hex characters (SHA-256 of the bytes)")


def _parse_metadata(text: str, client_ref: str) -> dict[str, str]:
    try:
        metadata = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidRequest("invalid_metadata", f"metadata is not JSON: {exc}") from None
    except RecursionError:  # thousands of nested brackets: not a flat object either
        raise InvalidRequest("invalid_metadata", "metadata must be a JSON object of string values; this one nests too deeply") from None
    check_metadata(metadata, client_ref)
    return metadata
