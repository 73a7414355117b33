"""The search API: ``GET /v1/search?q=&lang=&limit=`` over the hybrid caption index."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, Field

from captioning_common.api_docs import INVALID_REQUEST, STRIPPED, UNAUTHORIZED, error_responses
from captioning_common.http_api import ApiError, api_key_dependency, create_api
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.storage import ObjectStore
from services.indexing.index_store import CaptionIndex

log = logging.getLogger(__name__)

SEARCH_RESPONSES = error_responses({
    400: f"`invalid_query`: the index refused the query; {INVALID_REQUEST}",
    401: UNAUTHORIZED,
    503: "`unavailable`: the index could not be read (its storage failed); retry.",
})


class SearchResult(BaseModel):
    """One hit: the image, its caption in the asked language, its labels and text, the fused score and a presigned URL."""

    id: str = Field(pattern=r"^[0-9a-f]{64}$", description="The image id: lowercase hex SHA-256 of its bytes.")
    caption: str
    keywords: list[str]
    tags: list[str]
    objects: list[str]
    text: list[str]
    score: float
    image_url: str


class SearchResponse(BaseModel):
    """Hits, best first."""

    query: str
    lang: Literal["en", "ko"]
    results: list[SearchResult]


def create_app(index: CaptionIndex, store: ObjectStore, api_keys: list[str], metrics: PipelineMetrics, readiness: dict[str, Check], lifespan=None) -> FastAPI:
    """The FastAPI application of the search API."""
    app = create_api(
        "Captioning search API",
        "Hybrid search over approved, captioned images: BM25 full text (Korean by morpheme) over captions, keywords, "
        "tags, objects and text in the image, and multilingual embeddings that match queries and captions across "
        "English and Korean, fused by reciprocal rank.",
        metrics,
        readiness,
        lifespan,
    )
    authenticate = api_key_dependency(api_keys)

    limit_max = index.settings.search_limit_max

    @app.get("/v1/search", dependencies=[Depends(authenticate)], summary="Search captioned images", responses=SEARCH_RESPONSES)
    async def search(
        q: Annotated[
            str,
            Query(
                description="Words to look for in captions, keywords, tags, objects and text in the image (not only spaces).",
                max_length=500,
                json_schema_extra={"pattern": f"[^{STRIPPED}]"},  # checked by the index: `invalid_query`, "must not be empty"
            ),
        ],
        lang: Annotated[Literal["en", "ko"], Query(description="Language of the returned captions.")] = "en",
        limit: int = Query(10, description="Most results to return.", ge=1, le=limit_max),  # noqa: B008 - the bound is the index's setting
    ) -> SearchResponse:
        try:
            with metrics.time_stage("search"):
                hits = await asyncio.to_thread(index.search, q, lang, limit)
        except ValueError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from None
        except Exception as exc:
            log.exception("search failed")
            raise ApiError(503, "unavailable", f"the index could not be read, retry later: {type(exc).__name__}") from None
        results = [
            SearchResult(
                id=hit.image_id,
                caption=hit.caption,
                keywords=hit.keywords,
                tags=hit.tags,
                objects=hit.objects,
                text=hit.text,
                score=hit.score,
                image_url=store.presigned_get_url(hit.image_key),
            )
            for hit in hits
        ]
        return SearchResponse(query=q, lang=lang, results=results)

    return app
