"""Settings of the ingest service (``CAPTIONING_INGEST_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from captioning_common.images import DEFAULT_MAX_PIXELS
from captioning_common.stage import StageSettings


class IngestSettings(StageSettings):
    """Upload API, validation limits, and the claim-check stage's consumer and retries."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_INGEST_", extra="ignore")

    port: int = Field(8080, description="Port of the upload API (also /metrics, /healthz, /readyz).")
    max_bytes: int = Field(20 * 1024 * 1024, description="Largest accepted image file, bytes.")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, description="Largest accepted width x height (decompression-bomb guard).")
    min_side: int = Field(8, description="Smallest accepted width or height, pixels.")
    submissions_prefix: str = Field(
        "incoming/", min_length=1, description="Key prefix under which claim-check submissions must put their objects."
    )
    max_concurrent_uploads: int = Field(
        32, ge=1, description="Uploads handled at once; one more gets 503 `busy` with `Retry-After` before its body is read."
    )
    status_read_threads: int = Field(8, ge=1, description="Threads that read image records for `GET /v1/images/{id}` and reviews.")
    status_read_queue: int = Field(
        64, ge=0, description="Record reads that may wait for one of those threads; one more gets 503 `busy` with `Retry-After`."
    )
