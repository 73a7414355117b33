"""The upload API: ``POST /v1/images``, ``GET /v1/images/{id}``, ``POST /v1/reviews/{id}``.

Every ``/v1`` route needs a valid ``X-API-Key``. Errors are JSON bodies
``{"error": {"code": ..., "message": ...}}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from captioning_common.events import timestamp_now
from captioning_common.http_api import ApiError, api_key_dependency, create_api
from captioning_common.images import SUPPORTED
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.records import ImageRecords
from captioning_events.v1.moderation_pb2 import ReviewDecision, Verdict
from services.ingest.image_status import image_view
from services.ingest.intake import Intake, InvalidRequest, Submission, check_metadata, parse_languages
from services.ingest.settings import IngestSettings
from services.ingest.validation import ImageRejected, validate_image

IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")
MULTIPART_OVERHEAD = 64 * 1024  # room for the form fields and part headers around the file
DECISIONS_TOPIC = "moderation.decisions"
FILE_DESCRIPTION = f"{SUPPORTED} bytes (sniffed from the content; of an animation, the first frame is captioned)."


class ReviewRequest(BaseModel):
    """A reviewer's decision on an image held for review."""

    verdict: Literal["approve", "reject"]
    reviewer: str = Field(min_length=1, max_length=128)
    note: str = Field("", max_length=2000)


def create_app(
    settings: IngestSettings,
    api_keys: list[str],
    intake: Intake,
    records: ImageRecords,
    metrics: PipelineMetrics,
    readiness: dict[str, Check],
    lifespan=None,
) -> FastAPI:
    """The FastAPI application of the ingest service."""
    app = create_api(
        "Captioning ingest API",
        "Upload images for captioning, moderation and indexing, read their status, and decide items held for review.",
        metrics,
        readiness,
        lifespan,
    )
    authenticate = api_key_dependency(api_keys)
    body_limit = settings.max_bytes + MULTIPART_OVERHEAD

    @app.middleware("http")
    async def refuse_oversized_bodies(request: Request, call_next):
        """Answer 413 from the Content-Length alone, before an oversized body is read."""
        length = request.headers.get("content-length", "")
        if request.method == "POST" and length.isdigit() and int(length) > body_limit:
            metrics.error("file_too_large")
            message = f"the request has {length} bytes; an image may have at most {settings.max_bytes}"
            return JSONResponse({"error": {"code": "file_too_large", "message": message}}, status_code=413, headers={"Connection": "close"})
        return await call_next(request)

    @app.post("/v1/images", status_code=202, dependencies=[Depends(authenticate)], summary="Upload an image")
    async def upload(
        file: Annotated[UploadFile, File(description=FILE_DESCRIPTION)],
        languages: Annotated[list[str], Form(description="`en`, `ko` (repeat or comma-separate); default both.")] = [],  # noqa: B006
        client_ref: Annotated[str, Form(description="The caller's own reference, echoed in events.")] = "",
        metadata: Annotated[str, Form(description="JSON object of string values, echoed in events.")] = "{}",
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

    @app.get("/v1/images/{image_id}", dependencies=[Depends(authenticate)], summary="Status and results of an image")
    async def get_image(image_id: str) -> JSONResponse:
        _check_id(image_id)
        found = await asyncio.to_thread(records.all, image_id)
        if "received" not in found:
            raise ApiError(404, "not_found", f"no image {image_id}")
        return JSONResponse(image_view(image_id, found))

    @app.post("/v1/reviews/{image_id}", status_code=202, dependencies=[Depends(authenticate)], summary="Decide an image held for review")
    async def review(image_id: str, decision: ReviewRequest) -> JSONResponse:
        _check_id(image_id)
        moderation = await asyncio.to_thread(records.get, image_id, "moderation")
        if moderation is None or moderation["verdict"] != "review":
            raise ApiError(409, "not_in_review", f"image {image_id} is not held for review")
        event = ReviewDecision(
            image_id=image_id,
            verdict=Verdict.VERDICT_APPROVE if decision.verdict == "approve" else Verdict.VERDICT_REJECT,
            reviewer=decision.reviewer,
            note=decision.note,
            decided_at=timestamp_now(),
        )
        await intake.producer.send_async(DECISIONS_TOPIC, event, key=image_id)
        return JSONResponse({"id": image_id, "decision": decision.verdict}, status_code=202)

    return app


def _check_id(image_id: str) -> None:
    if not IMAGE_ID.match(image_id):
        raise ApiError(400, "invalid_id", "an image id is 64 lowercase hex characters (SHA-256 of the bytes)")


def _parse_metadata(text: str, client_ref: str) -> dict[str, str]:
    try:
        metadata = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidRequest("invalid_metadata", f"metadata is not JSON: {exc}") from None
    check_metadata(metadata, client_ref)
    return metadata
