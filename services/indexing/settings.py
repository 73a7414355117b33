"""Settings of the indexing service and search API (``CAPTIONING_INDEXING_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IndexingSettings(BaseSettings):
    """Where the index lives, how it is built, and the search API."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_INDEXING_", extra="ignore")

    port: int = Field(8081, description="Port of the search API (also /metrics, /healthz, /readyz).")
    group_id: str = Field("indexing", description="Consumer group reading `captions.moderated`.")
    batch_size: int = Field(64, description="Most verdicts indexed per batch (one index commit each).")
    io_concurrency: int = Field(8, description="Image records read or written in S3 at once.")
    index_prefix: str = Field("index", description="Key prefix of the LanceDB database in the bucket.")
    table: str = Field(
        "captions_v2",
        description="LanceDB table name. Each index layout has its own (`captions_v2`: 512-dim multilingual vectors, "
        "tags, objects, text); a table of another layout is refused, never mixed.",
    )
    search_limit_max: int = Field(100, description="Largest `limit` a search may ask for.")
