"""Settings of the caption service (``CAPTIONING_CAPTION_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CaptionSettings(BaseSettings):
    """Micro-batching, fetching and the Triton model the caption service calls."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_CAPTION_", extra="ignore")

    port: int = Field(9401, description="Port of /metrics, /healthz, /readyz.")
    group_id: str = Field("caption", description="Consumer group reading `images.uploaded`.")
    batch_size: int = Field(32, description="Most images per micro-batch.")
    batch_wait_ms: int = Field(50, description="Longest wait for a micro-batch to fill, milliseconds.")
    fetch_concurrency: int = Field(16, description="S3 calls (originals fetched, records read and written) in flight at once.")
    model_name: str = Field("captioner", description="Triton model to call.")
    model_version: str = Field("", description="Triton model version (empty: the server's policy, normally the latest).")
    retry_backoff_s: float = Field(0.5, description="First delay before a batch that hit a transient failure is retried; doubles each time.")
    max_retry_backoff_s: float = Field(30.0, description="Longest delay between retries of a failing batch.")
