"""Settings of the indexing service and search API (``CAPTIONING_INDEXING_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from captioning_common.stage import StageSettings


class IndexingSettings(StageSettings):
    """The index writer's consumer and lease, where the index lives, and the search API."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_INDEXING_", extra="ignore")

    port: int = Field(8081, description="Port of the search API (also /metrics, /healthz, /readyz).")
    writer_lease_ttl_s: float = Field(
        30.0, gt=0, description="Lifetime of the index writer's lease: one replica writes the index, every replica serves search."
    )
    read_consistency_s: float = Field(1.0, ge=0, description="How stale a search replica's view of the table may be, seconds.")
    index_prefix: str = Field("index", description="Key prefix of the LanceDB database in the bucket.")
    table: str = Field(
        "captions_v2",
        description="LanceDB table name. Each index layout has its own (`captions_v2`: 512-dim multilingual vectors, "
        "tags, objects, text); a table of another layout is refused, never mixed.",
    )
    search_limit_max: int = Field(100, description="Largest `limit` a search may ask for.")
    fold_rows: int = Field(
        1000,
        ge=1,
        description="Rows waiting outside the indexes that start a fold of them into the indexes, beside the writer "
        "(each waiting fragment adds a scan to every upsert; each fold costs more as the table grows).",
    )
    version_retention_s: float = Field(
        300.0,
        gt=0,
        description="How long the table keeps a superseded version: each fold of new rows into the indexes removes older ones "
        "(the fold's cost grows with the versions kept). A search still reading a removed version fails.",
    )
