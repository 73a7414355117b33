"""The ingest and search APIs, called with the key the browser showed to the console."""

from __future__ import annotations

import urllib.request
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import Response

from captioning_common.http_api import ApiError

_PASSED_HEADERS = ("content-type", "retry-after")


class Upstream:
    """Forwards console requests to the ingest and search APIs; their answers come back as they are."""

    def __init__(self, ingest_url: str, search_url: str, timeout_s: float) -> None:
        self.ingest_url = ingest_url.rstrip("/")
        self.search_url = search_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def forward(self, request: Request, url: str) -> Response:
        """``request``'s method, query, body and key sent to ``url``; the API's status, body and content type back."""
        headers = {"X-API-Key": request.headers.get("x-api-key", "")}
        if "content-type" in request.headers:
            headers["Content-Type"] = request.headers["content-type"]
        body = await request.body()
        try:
            answer = await self._client.request(request.method, url, params=request.query_params, headers=headers, content=body or None)
        except httpx.HTTPError as exc:
            raise ApiError(503, "unavailable", f"{url.split('/v1/')[0]} did not answer: {type(exc).__name__}") from None
        passed = {name: answer.headers[name] for name in _PASSED_HEADERS if name in answer.headers}
        return Response(answer.content, status_code=answer.status_code, headers=passed)

    async def image_status(self, image_id: str, key: str) -> dict[str, Any] | None:
        """``GET /v1/images/{id}`` with ``key``: the image's view, None when unknown; ApiError with the API's refusal otherwise."""
        try:
            answer = await self._client.get(f"{self.ingest_url}/v1/images/{image_id}", headers={"X-API-Key": key})
        except httpx.HTTPError as exc:
            raise ApiError(503, "unavailable", f"the ingest API did not answer: {type(exc).__name__}") from None
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            error = answer.json().get("error", {}) if answer.headers.get("content-type", "").startswith("application/json") else {}
            raise ApiError(answer.status_code, error.get("code", "upstream_error"), error.get("message", answer.text[:200]))
        return answer.json()

    def checks(self) -> dict[str, Any]:
        """Readiness checks: each API's /healthz answers 200."""
        return {"ingest": lambda: _healthy(self.ingest_url), "search": lambda: _healthy(self.search_url)}

    async def close(self) -> None:
        await self._client.aclose()


def _healthy(base_url: str) -> bool:
    with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as answer:
        return answer.status == 200
