"""Settings of the web console (``CAPTIONING_CONSOLE_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """Where the console listens, the APIs it calls for the key shown to it, and how much it lists."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_CONSOLE_", extra="ignore")

    port: int = Field(8082, description="Port of the web console (also /metrics, /healthz, /readyz).")
    ingest_url: str = Field("", description="Base URL of the ingest API (empty: `http://127.0.0.1:` and `CAPTIONING_INGEST_PORT`).")
    search_url: str = Field("", description="Base URL of the search API (empty: `http://127.0.0.1:` and `CAPTIONING_INDEXING_PORT`).")
    request_timeout_s: float = Field(60.0, gt=0, description="Timeout of one call to the ingest or search API, seconds.")
    max_watched_images: int = Field(200, ge=1, description="Most images one live stream of the console follows.")
    review_queue_limit: int = Field(100, ge=1, description="Most held items the review queue shows at once, oldest first.")
    dead_letter_limit: int = Field(200, ge=1, description="Most dead letters listed per topic, newest first.")
