"""What the HTTP APIs (ingest, search) share: API-key auth, the error format, metrics and probes.

Errors are JSON ``{"error": {"code": ..., "message": ...}}``; ``/metrics``,
``/healthz`` and ``/readyz`` are served next to the API on the same port.
:class:`RequestGuard` checks the key and the body size of ``/v1`` requests
before, and while, their bodies arrive; :class:`BoundedExecutor` keeps blocking
reads off an unbounded queue.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from http import HTTPStatus
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import uvicorn
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from captioning_common.api_docs import API_KEY, without_default_422
from captioning_common.kafka.producer import ProduceError
from captioning_common.metrics import PipelineMetrics, method_label
from captioning_common.ops_server import Check, run_checks

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def response(self, **headers: str) -> JSONResponse:
        """The JSON answer of this error."""
        return JSONResponse({"error": {"code": self.code, "message": self.message}}, status_code=self.status, headers=self.headers | headers)


def unauthorized() -> ApiError:
    """401 ``unauthorized``."""
    return ApiError(401, "unauthorized", "a valid X-API-Key header is required")


def is_key(candidate: str | None, keys: Sequence[str]) -> bool:
    """True when ``candidate`` is one of ``keys``; every key is compared in constant time."""
    found = False
    for key in keys:
        found |= candidate is not None and hmac.compare_digest(candidate.encode(), key.encode())
    return found


def api_key_dependency(keys: list[str]) -> Callable[..., None]:
    """A FastAPI dependency that answers 401 unless ``X-API-Key`` is one of ``keys``."""
    if not keys:
        log.warning("CAPTIONING_API_KEYS is empty: every /v1 request will get 401")

    def authenticate(x_api_key: Annotated[str | None, Security(API_KEY)] = None) -> None:
        if not is_key(x_api_key, keys):
            raise unauthorized()

    return authenticate


def busy(message: str) -> ApiError:
    """503 ``busy`` with ``Retry-After``."""
    return ApiError(503, "busy", message, headers={"Retry-After": "1"})


Authorize = Callable[[str, str, "str | None"], "ApiError | None"]
"""(method, path, ``X-API-Key`` or None) -> the refusal of the request, or None to let it in."""


class _BodyTooLarge(Exception):
    pass


class RequestGuard:
    """Pure ASGI middleware for ``/v1`` requests: keys and sizes are enforced before the body is trusted.

    Before any body byte is received: ``authorize`` may refuse the request on its
    headers (401, 403); a ``Content-Length`` over ``max_body_bytes`` gets 413
    ``file_too_large``; a (method, path) of ``concurrency`` at its limit gets 503
    ``busy`` with ``Retry-After``. While the body streams (chunked included), the
    bytes are counted: past ``max_body_bytes`` the request is cut off and answered
    413. Every refusal carries ``Connection: close``, so an unread body is never
    drained; ``on_refusal`` is told its error code.
    """

    def __init__(
        self,
        app: ASGIApp,
        authorize: Authorize,
        max_body_bytes: int,
        concurrency: dict[tuple[str, str], int] | None = None,
        on_refusal: Callable[[str], None] = lambda code: None,
        prefix: str = "/v1",
    ) -> None:
        self.app, self.authorize, self.max_body_bytes = app, authorize, max_body_bytes
        self.concurrency = concurrency or {}
        self.on_refusal, self.prefix = on_refusal, prefix
        self._in_flight: Counter[tuple[str, str]] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        slot = (scope["method"], scope["path"])
        refusal = self.authorize(scope["method"], scope["path"], headers.get("x-api-key"))
        length = headers.get("content-length", "")
        if refusal is None and length.isdigit() and int(length) > self.max_body_bytes:
            refusal = self._too_large(f"the request has {length} bytes")
        if refusal is None and slot in self.concurrency and self._in_flight[slot] >= self.concurrency[slot]:
            refusal = busy(f"{self.concurrency[slot]} requests like this one are in progress; retry later")
        if refusal is not None:
            await self._refuse(refusal, scope, receive, send)
            return
        self._in_flight[slot] += 1
        try:
            await self._counted(scope, receive, send)
        finally:
            self._in_flight[slot] -= 1

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received, cut_off, answered = 0, False, False

        async def counting_receive() -> Message:
            nonlocal received, cut_off
            if cut_off:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    cut_off = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if cut_off:
                return  # the app's answer to a body it never got whole is replaced by the 413
            answered |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not cut_off:
                raise
        if cut_off and not answered:
            await self._refuse(self._too_large(f"the request passed {self.max_body_bytes} bytes"), scope, receive, send)

    def _too_large(self, what: str) -> ApiError:
        return ApiError(413, "file_too_large", f"{what}; a request body may have at most {self.max_body_bytes}")

    async def _refuse(self, error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
        self.on_refusal(error.code)
        await error.response(Connection="close")(scope, receive, send)


class BoundedExecutor:
    """Blocking calls on ``workers`` threads, with at most ``queue`` more waiting; beyond that, 503 ``busy``."""

    def __init__(self, workers: int, queue: int, name: str, on_busy: Callable[[], None] = lambda: None) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._capacity = workers + queue
        self._in_flight = 0
        self._on_busy = on_busy

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on a worker thread; ApiError 503 ``busy`` when the pool and its queue are full."""
        if self._in_flight >= self._capacity:
            self._on_busy()
            raise busy("too many reads are in progress; retry later")
        loop = asyncio.get_running_loop()
        self._in_flight += 1  # released when the thread finishes, even if the request was cancelled meanwhile
        future = self._pool.submit(function, *args)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self._in_flight -= 1


def create_api(
    title: str,
    description: str,
    metrics: PipelineMetrics,
    readiness: dict[str, Check],
    lifespan=None,
    middleware: Sequence[Middleware] = (),
) -> FastAPI:
    """A FastAPI app with the common error handlers, request metrics, /metrics, /healthz and /readyz.

    ``middleware`` (e.g. a :class:`RequestGuard`) runs inside the request metrics, so its refusals are counted.
    """
    app = FastAPI(title=title, version="1", description=description, lifespan=lifespan, middleware=list(middleware))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """Framework refusals (an unparsable body, an unknown path, a method not allowed) in the error body too."""
        known = exc.status_code in HTTPStatus._value2member_map_
        code = "invalid_request" if exc.status_code == 400 else HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_") if known else "http_error"
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(BotoCoreError)
    @app.exception_handler(ClientError)
    @app.exception_handler(ProduceError)
    async def dependency_failed(request: Request, exc: Exception) -> JSONResponse:
        """S3 or Kafka failing under a request: 503, the client retries."""
        log.warning("a dependency failed under a request", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        return ApiError(503, "unavailable", f"a dependency is unavailable, retry later: {type(exc).__name__}").response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
        return JSONResponse({"error": {"code": "invalid_request", "message": details}}, status_code=400)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        path = _route_path(app, request.scope)
        metrics.request(request.method, path, response.status_code)
        metrics.stage_seconds.labels(metrics.service, f"http {method_label(request.method)} {path}").observe(time.perf_counter() - start)
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

    without_default_422(app)
    return app


def _route_path(app: FastAPI, scope: Scope) -> str:
    """The path template of the request's route (also of one refused before routing), or ``unmatched``."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in app.router.routes if r.matches(scope)[0] is not Match.NONE), None)
    return getattr(route, "path", "unmatched") if route is not None else "unmatched"


def serve(app: FastAPI, host: str, port: int, graceful_shutdown_s: float | None = None) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (uvicorn stops accepting, drains requests, then runs the lifespan's shutdown).

    ``graceful_shutdown_s``: how long requests may take to drain before they are cancelled
    (for endless responses such as event streams); None waits for them all.
    """
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=graceful_shutdown_s)
