"""OpenAPI of the HTTP APIs: the error body, the error statuses each route declares, the API-key scheme.

Every error answer is ``{"error": {"code": ..., "message": ...}}``; a route lists each
status it can answer with :func:`error_responses`, so clients and property-based tests
(schemathesis) can hold the service to its schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

API_KEY = APIKeyHeader(name="X-API-Key", scheme_name="ApiKey", description="One of the configured keys.", auto_error=False)
"""The ``X-API-Key`` header as an OpenAPI security scheme (checking it is the caller's business)."""


class ErrorDetail(BaseModel):
    """Why a request was refused."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Machine-readable reason, e.g. `unauthorized`, `corrupt_image`, `busy`.")
    message: str = Field(description="The reason in words.")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


STRIPPED = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""The characters ``str.strip()`` removes, as the inside of a regular-expression class (Python, ECMA and Rust alike)."""

UNAUTHORIZED = "`unauthorized`: no `X-API-Key`, or not a configured one."
INVALID_REQUEST = "`invalid_request`: a parameter or body breaks this schema (the message names it)."
BODY_TOO_LARGE = "`file_too_large`: the body is over the limit (told from `Content-Length`, or counted while it streams)."


def error_responses(statuses: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: each error status, the codes it carries, and the error body."""
    return {status: {"model": ErrorBody, "description": description} for status, description in sorted(statuses.items())}


def without_default_422(app: FastAPI) -> None:
    """Drop the 422 ``HTTPValidationError`` FastAPI documents on every route with parameters.

    Request validation errors are answered 400 ``invalid_request`` in the error body;
    a route that does answer 422 declares it with :func:`error_responses`.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    declared = operation.get("responses", {}).get("422", {})
                    if "HTTPValidationError" in str(declared.get("content", "")):
                        del operation["responses"]["422"]
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
