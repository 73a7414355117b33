"""The OpenAPI of the ingest and search APIs says what the code does: statuses, error body, constraints."""

from __future__ import annotations

import asyncio
import itertools
import json
import re

import httpx
import jsonschema_rs
import pytest

from captioning_common.metrics import PipelineMetrics
from services.indexing.search_api import create_app as create_search_app
from services.indexing.settings import IndexingSettings
from services.ingest.api import Access, create_app
from services.ingest.api_schema import LANGUAGES_PATTERN
from services.ingest.intake import Intake, InvalidRequest, check_metadata, parse_languages
from services.ingest.settings import IngestSettings
from tests.unit.ingest_fakes import FakeProducer, FakeRecords

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


class StubIndex:
    settings = IndexingSettings(search_limit_max=40)

    def search(self, query: str, lang: str, limit: int) -> list:
        if not query.strip():
            raise ValueError("query must not be empty")
        return []


def ingest_app():
    records = FakeRecords()
    access = Access(["upload-key"], {"review-key": "rev"}, "signing-key")
    return create_app(IngestSettings(), access, Intake(records, FakeProducer()), records, PipelineMetrics("ingest"), {})


def search_app():
    return create_search_app(StubIndex(), None, ["upload-key"], PipelineMetrics("indexing"), {})


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


@pytest.mark.parametrize("make_app", [ingest_app, search_app])
def test_every_route_declares_the_key_and_its_error_statuses_with_the_error_body(make_app) -> None:
    schema = make_app().openapi()
    assert schema["components"]["securitySchemes"] == {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "One of the configured keys."}}
    assert "HTTPValidationError" not in json.dumps(schema)  # validation errors are 400 invalid_request, not FastAPI's 422
    for name, operation in operations(schema):
        assert operation["security"] == [{"ApiKey": []}], name
        assert all(p["in"] != "header" for p in operation.get("parameters", [])), name  # the key is the security scheme
        errors = {status: r for status, r in operation["responses"].items() if int(status) >= 400}
        assert {"400", "401"} <= set(errors), name
        assert all(r["content"]["application/json"]["schema"] == ERROR_BODY for r in errors.values()), name
        assert all(r["description"].startswith("`") for r in errors.values()), name  # each names its error codes


def test_the_ingest_schema_holds_the_real_constraints() -> None:
    schema = ingest_app().openapi()
    declared = {name: set(op["responses"]) for name, op in operations(schema)}
    assert declared == {
        "POST /v1/images": {"200", "202", "400", "401", "403", "413", "415", "422", "503"},
        "GET /v1/images/{image_id}": {"200", "400", "401", "404", "413", "503"},
        "POST /v1/reviews/{image_id}": {"202", "400", "401", "403", "409", "413", "503"},
    }
    for name, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            assert parameter["schema"]["pattern"] == "^[0-9a-f]{64}$", name
    form = schema["components"]["schemas"]["Body_upload_v1_images_post"]["properties"]
    assert form["file"]["format"] == "binary" and form["file"]["minLength"] == 1
    assert form["client_ref"]["maxLength"] == 256
    assert form["metadata"]["maxProperties"] == 32 and form["metadata"]["additionalProperties"]["maxLength"] == 1024
    review = schema["components"]["schemas"]["ReviewRequest"]
    assert review["additionalProperties"] is False and set(review["properties"]) == {"verdict", "note"}


def test_the_search_schema_holds_the_real_constraints() -> None:
    (operation,) = [op for _, op in operations(search_app().openapi())]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert (parameters["limit"]["minimum"], parameters["limit"]["maximum"]) == (1, StubIndex.settings.search_limit_max)
    assert parameters["lang"]["enum"] == ["en", "ko"]
    assert parameters["q"]["maxLength"] == 500
    assert set(operation["responses"]) == {"200", "400", "401", "503"}


def _as_schemathesis_reads(pattern: str):
    """A check of ``pattern`` by the ECMA-style regex engine schemathesis validates with, and by Python's (it generates with)."""
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    python = re.compile(pattern)
    return lambda text: (validator.is_valid(text), python.search(text) is not None)


def test_the_languages_pattern_accepts_exactly_what_the_parser_accepts() -> None:
    matches = _as_schemathesis_reads(LANGUAGES_PATTERN)
    alphabet = ["e", "n", "k", "o", "E", "N", "K", "O", "\u212a", ",", " ", "\t", "\x1c", "\u3000", "\u200b", "x", "\n"]
    checked = 0
    for length in range(6):
        for letters in itertools.product(alphabet, repeat=length):
            text = "".join(letters)
            try:
                parse_languages([text])
                accepted = True
            except InvalidRequest:
                accepted = False
            assert matches(text) == (accepted, accepted), repr(text)
            checked += 1
    assert checked == sum(len(alphabet) ** n for n in range(6))


def test_the_metadata_schema_is_the_checked_limits() -> None:
    metadata = ingest_app().openapi()["components"]["schemas"]["Body_upload_v1_images_post"]["properties"]["metadata"]
    validator = jsonschema_rs.validator_for(metadata)
    for candidate in ({}, {"k" * 128: "v" * 1024}, {str(i): "" for i in range(32)}, {"k" * 129: ""}, {"k": "v" * 1025}, {str(i): "" for i in range(33)}, {"k": 1}):
        try:
            check_metadata(candidate, "")
            accepted = True
        except InvalidRequest:
            accepted = False
        assert validator.is_valid(candidate) == accepted, candidate


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/v1/reviews/" + "a" * 64, {"content": b"\x04\xde not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid_request"),
        ("POST", "/v1/images", {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}}, 400, "invalid_request"),
        ("PUT", "/v1/images", {}, 405, "method_not_allowed"),
        ("GET", "/v1/nothing-here", {}, 404, "not_found"),
    ],
)
def test_framework_refusals_answer_in_the_error_body(method: str, path: str, kwargs: dict, status: int, code: str) -> None:
    key = "review-key" if path.startswith("/v1/reviews/") else "upload-key"
    response = call(ingest_app(), method, path, headers={"X-API-Key": key, **kwargs.pop("headers", {})}, **kwargs)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert response.json()["error"]["message"]
    if status == 405:
        assert response.headers["allow"] == "POST"


def test_search_bounds_are_enforced_as_declared() -> None:
    app, key = search_app(), {"X-API-Key": "upload-key"}
    assert call(app, "GET", "/v1/search", params={"q": "cat", "limit": 40}, headers=key).status_code == 200
    for params in ({"q": "cat", "limit": 41}, {"q": "cat", "limit": 0}, {"q": "cat", "lang": "fr"}, {"q": "x" * 501}, {"q": " \u3000\x1c"}):
        response = call(app, "GET", "/v1/search", params=params, headers=key)
        assert response.status_code == 400 and response.json()["error"]["code"] in ("invalid_request", "invalid_query"), params
