"""What the HTTP APIs (ingest, search) share: API-key auth, the error format, metrics and probes.

Errors are JSON ``{"error": {"code": ..., "message": ...}}``; ``/metrics``,
``/healthz`` and ``/readyz`` are served next to the API on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from captioning_common.kafka.producer import EventProducer
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check, run_checks
from captioning_common.stage import BackgroundConsumer

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def api_key_dependency(keys: list[str]) -> Callable[..., None]:
    """A FastAPI dependency that answers 401 unless ``X-API-Key`` is one of ``keys``."""

    def authenticate(x_api_key: Annotated[str | None, Header(description="One of the configured API keys.")] = None) -> None:
        if not x_api_key or not any(hmac.compare_digest(x_api_key.encode(), key.encode()) for key in keys):
            raise ApiError(401, "unauthorized", "a valid X-API-Key header is required")

    return authenticate


def create_api(title: str, description: str, metrics: PipelineMetrics, readiness: dict[str, Check], lifespan=None) -> FastAPI:
    """A FastAPI app with the common error handlers, request metrics, /metrics, /healthz and /readyz."""
    app = FastAPI(title=title, version="1", description=description, lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
        return JSONResponse({"error": {"code": "invalid_request", "message": details}}, status_code=400)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = route.path if route is not None else "unmatched"
        metrics.request(request.method, path, response.status_code)
        metrics.stage_seconds.labels(metrics.service, f"http {request.method} {path}").observe(time.perf_counter() - start)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ok, results = await asyncio.to_thread(run_checks, readiness)
        return JSONResponse({"status": "ok" if ok else "failing", "checks": results}, status_code=200 if ok else 503)

    return app


def consumer_lifespan(background: BackgroundConsumer, producer: EventProducer):
    """A FastAPI lifespan that consumes next to the API and, at shutdown, finishes the batch, commits and flushes."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        background.start()
        yield
        background.stop()
        producer.close()
        log.info("stopped")

    return lifespan


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (uvicorn stops accepting, drains requests, then runs the lifespan's shutdown)."""
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
