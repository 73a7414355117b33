"""The console's HTTP app: its static pages, and the ``/api`` routes the pages call with the user's key.

``/api/images``, ``/api/images/{id}``, ``/api/reviews/{id}`` and ``/api/search`` are
forwarded to the ingest and search APIs with the same key. ``/api/events`` is a
server-sent event stream fed by the console's reader of the topics; the review
queue and the dead letters are read by the console itself, for reviewer and
operator keys only (:class:`ConsoleAccess`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Security
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware import Middleware

from captioning_common.api_docs import API_KEY
from captioning_common.http_api import ApiError, RequestGuard, create_api
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.records import IMAGE_ID_PATTERN
from services.console.access import ConsoleAccess, Identity
from services.console.dead_letters import DeadLetters
from services.console.feed import PROGRESS, PipelineFeed, Subscriber, Update
from services.console.review_queue import ReviewQueue
from services.console.settings import ConsoleSettings
from services.console.upstream import Upstream

STATIC = Path(__file__).resolve().parent / "static"
IMAGE_ID = re.compile(IMAGE_ID_PATTERN)
HEARTBEAT_S = 15.0
SNAPSHOT_CONCURRENCY = 8
CATCH_UP_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)  # pauses before reading again a view still behind its event
# The pages load nothing from elsewhere; images come from the bucket's presigned URLs and from the files picked.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data: http: https:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class Chosen(BaseModel):
    """One dead letter, by its position in its topic."""

    model_config = ConfigDict(extra="forbid")

    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class ReplayRequest(BaseModel):
    """The dead letters to replay."""

    model_config = ConfigDict(extra="forbid")

    records: list[Chosen] = Field(min_length=1, max_length=500)


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(
    settings: ConsoleSettings,
    access: ConsoleAccess,
    feed: PipelineFeed,
    upstream: Upstream,
    queue: ReviewQueue,
    dead_letters: DeadLetters,
    metrics: PipelineMetrics,
    readiness: dict[str, Check],
    max_body_bytes: int,
    lifespan=None,
) -> FastAPI:
    """The FastAPI application of the console; ``max_body_bytes``: the largest upload, form fields included."""
    guard = Middleware(RequestGuard, authorize=access.refusal, max_body_bytes=max_body_bytes, on_refusal=metrics.error, prefix="/api/")
    app = create_api(
        "Captioning console",
        "The web console: upload and watch images, search, review held items, replay dead letters. Every /api route takes "
        "the user's key in X-API-Key and has no more rights than that key.",
        metrics,
        readiness,
        lifespan,
        middleware=[guard],
    )

    def identity(x_api_key: Annotated[str | None, Security(API_KEY)] = None) -> Identity:
        found = access.identify(x_api_key)
        if found is None:  # the guard refused it already; kept for the schema and direct calls
            raise ApiError(401, "unauthorized", "a valid X-API-Key header is required")
        return found

    @app.middleware("http")
    async def page_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/session", summary="What the key may do")
    async def session(who: Identity = Security(identity)) -> dict[str, Any]:  # noqa: B008
        return {"roles": who.roles, "name": who.name}

    @app.post("/api/images", summary="Upload an image (forwarded to POST /v1/images)")
    async def upload(request: Request) -> Response:
        return await upstream.forward(request, f"{upstream.ingest_url}/v1/images")

    @app.get("/api/images/{image_id}", summary="An image's status (forwarded to GET /v1/images/{id})")
    async def image(image_id: str, request: Request) -> Response:
        return await upstream.forward(request, f"{upstream.ingest_url}/v1/images/{_checked(image_id)}")

    @app.post("/api/reviews/{image_id}", summary="Decide a held item (forwarded to POST /v1/reviews/{id})")
    async def decide(image_id: str, request: Request) -> Response:
        return await upstream.forward(request, f"{upstream.ingest_url}/v1/reviews/{_checked(image_id)}")

    @app.get("/api/search", summary="Search (forwarded to GET /v1/search)")
    async def search(request: Request) -> Response:
        return await upstream.forward(request, f"{upstream.search_url}/v1/search")

    @app.get("/api/events", summary="Live updates of images and of the review queue (server-sent events)")
    async def events(
        request: Request,
        who: Identity = Security(identity),  # noqa: B008
        ids: Annotated[str, Query(description="Comma-separated image ids to follow.", max_length=70 * 500)] = "",
        queue: Annotated[bool, Query(description="Also follow the review queue (reviewer keys only).")] = False,
    ) -> StreamingResponse:
        watched = {image_id for image_id in ids.split(",") if image_id}
        for image_id in watched:
            _checked(image_id)
        if len(watched) > settings.max_watched_images:
            raise ApiError(400, "too_many_images", f"a stream follows at most {settings.max_watched_images} images")
        if queue and not who.reviewer:
            raise ApiError(403, "forbidden", "following the review queue needs a reviewer key")
        key = request.headers.get("x-api-key", "")
        return StreamingResponse(_stream(feed, upstream, Subscriber(watched, queue), key), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # proxies must not buffer events

    @app.get("/api/review-queue", summary="Items held for review (reviewer keys only)")
    async def review_queue() -> dict[str, Any]:
        return {"items": await asyncio.to_thread(queue.items)}

    @app.get("/api/dead-letters", summary="Dead-letter topics and how many records each holds (operator keys only)")
    async def dead_letter_topics() -> dict[str, Any]:
        return {"topics": await asyncio.to_thread(dead_letters.counts)}

    @app.get("/api/dead-letters/{topic}", summary="The newest dead letters of a topic (operator keys only)")
    async def dead_letter_list(topic: str) -> dict[str, Any]:
        return await asyncio.to_thread(dead_letters.latest, _dead_letter_topic(dead_letters, topic))

    @app.post("/api/dead-letters/{topic}/replay", summary="Replay chosen dead letters to their source topic (operator keys only)")
    async def dead_letter_replay(topic: str, body: ReplayRequest, who: Identity = Security(identity)) -> JSONResponse:  # noqa: B008
        chosen = {(item.partition, item.offset) for item in body.records}
        report = await asyncio.to_thread(dead_letters.replay, _dead_letter_topic(dead_letters, topic), chosen, who.operator or "")
        return JSONResponse(vars(report) | {"chosen": len(chosen)})

    return app


def _checked(image_id: str) -> str:
    if not IMAGE_ID.match(image_id):
        raise ApiError(400, "invalid_id", "an image id is 64 lowercase hex characters (SHA-256 of the bytes)")
    return image_id


def _dead_letter_topic(dead_letters: DeadLetters, topic: str) -> str:
    if topic not in dead_letters.topics:
        raise ApiError(404, "not_found", f"{topic[:100]} is not a dead-letter topic of the spec")
    return topic


async def _snapshot(upstream: Upstream, image_ids: set[str], key: str) -> list[dict[str, Any]]:
    """The current view of each image, read through the ingest API with ``key`` (its refusal ends the request)."""
    slots = asyncio.Semaphore(SNAPSHOT_CONCURRENCY)

    async def one(image_id: str) -> dict[str, Any] | None:
        async with slots:
            return await upstream.image_status(image_id, key)

    return [view for view in await asyncio.gather(*(one(i) for i in sorted(image_ids))) if view is not None]


async def view_showing(upstream: Upstream, update: Update, key: str) -> dict[str, Any] | None:
    """The image's view once it shows the stage ``update`` announces, or as it is after a few tries.

    A stage writes its completion marks (indexing's ``indexed_at``) just after its event
    is acknowledged, so a view read at once may still be one step behind the event.
    """
    view = await upstream.image_status(update.image_id, key)
    for pause in CATCH_UP_S:
        if view is None or not behind(view.get("status", ""), update.stage):
            break
        await asyncio.sleep(pause)
        view = await upstream.image_status(update.image_id, key)
    return view


def behind(status: str, stage: str) -> bool:
    """Whether an image in ``status`` has not yet reached ``stage`` of the pipeline."""
    return status in PROGRESS and stage in PROGRESS and PROGRESS.index(status) < PROGRESS.index(stage)


async def _stream(feed: PipelineFeed, upstream: Upstream, subscriber: Subscriber, key: str) -> AsyncIterator[str]:
    """Each followed image's view, then one event per update of a followed image (its view read again) or of the queue.

    The views are read through the ingest API with the user's key, which checks it
    again; following starts before the first read, so no update falls in between.
    """
    feed.subscribe(subscriber)
    try:
        try:
            snapshot = await _snapshot(upstream, subscriber.image_ids, key)
        except ApiError as exc:
            yield sse("error", {"code": exc.code, "message": exc.message})
            return
        for view in snapshot:
            yield sse("image", {"topic": "", "image": view})
        yield sse("ready", {"images": len(snapshot)})
        while True:
            try:
                update: Update = await asyncio.wait_for(subscriber.updates.get(), HEARTBEAT_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if update.image_id in subscriber.image_ids:
                try:
                    view = await view_showing(upstream, update, key)
                except ApiError as exc:
                    yield sse("error", {"code": exc.code, "message": exc.message})
                    return
                if view is not None:
                    yield sse("image", {"topic": update.topic, "image": view})
            if update.queue:
                yield sse("queue", {"change": update.queue, "id": update.image_id})
    finally:
        feed.unsubscribe(subscriber)
