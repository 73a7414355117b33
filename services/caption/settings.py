"""Settings of the caption service (``CAPTIONING_CAPTION_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from captioning_common.stage import StageSettings


class CaptionSettings(StageSettings):
    """The stage's consumer and retries, and the Triton model it calls."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_CAPTION_", extra="ignore")

    port: int = Field(9401, description="Port of /metrics, /healthz, /readyz.")
    model_name: str = Field("captioner", description="Triton model to call.")
    model_version: str = Field("", description="Triton model version (empty: the server's policy, normally the latest).")
    max_image_bytes: int = Field(
        20 * 1024 * 1024, description="Largest original fetched from S3, bytes; a larger one is dead-lettered (`object_too_large`)."
    )
