"""The search API: ``GET /v1/search?q=&lang=&limit=`` over the hybrid caption index."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel

from captioning_common.http_api import ApiError, api_key_dependency, create_api
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.storage import ObjectStore
from services.indexing.index_store import CaptionIndex


class SearchResult(BaseModel):
    """One hit: the image, its caption in the asked language, its labels and text, the fused score and a presigned URL."""

    id: str
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
    lang: str
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

    @app.get("/v1/search", dependencies=[Depends(authenticate)], summary="Search captioned images")
    async def search(
        q: Annotated[str, Query(description="Words to look for in captions, keywords, tags, objects and text in the image.", max_length=500)],
        lang: Annotated[Literal["en", "ko"], Query(description="Language of the returned captions.")] = "en",
        limit: Annotated[int, Query(description="Most results to return.")] = 10,
    ) -> SearchResponse:
        try:
            with metrics.time_stage("search"):
                hits = await asyncio.to_thread(index.search, q, lang, limit)
        except ValueError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from None
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
