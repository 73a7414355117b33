"""Settings of the ingest service (``CAPTIONING_INGEST_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from captioning_common.images import DEFAULT_MAX_PIXELS


class IngestSettings(BaseSettings):
    """Upload API, validation limits and the claim-check consumer."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_INGEST_", extra="ignore")

    port: int = Field(8080, description="Port of the upload API (also /metrics, /healthz, /readyz).")
    max_bytes: int = Field(20 * 1024 * 1024, description="Largest accepted image file, bytes.")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, description="Largest accepted width x height (decompression-bomb guard).")
    min_side: int = Field(8, description="Smallest accepted width or height, pixels.")
    group_id: str = Field("ingest", description="Consumer group of the claim-check reader of `images.submitted`.")
    submissions_batch_size: int = Field(32, description="Claim-check submissions validated per batch.")
