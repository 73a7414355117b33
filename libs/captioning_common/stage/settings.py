"""Settings every consuming stage shares; each service's settings class extends them under its own prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class StageSettings(BaseSettings):
    """Consumer group, micro-batching, retries and S3 concurrency of a stage."""

    group_id: str = Field("", description="Consumer group of the stage's input topics (empty: the service's name).")
    batch_size: int = Field(32, ge=1, description="Most messages per micro-batch.")
    batch_wait_ms: int = Field(50, ge=0, description="Longest wait for a micro-batch to fill, milliseconds.")
    max_attempts: int = Field(
        5, ge=1,
        description="Attempts at a message that fails while every dependency is healthy before it is dead-lettered "
        "(`retries_exhausted`); failures during an outage of a dependency are not counted.",
    )
    retry_backoff_s: float = Field(0.5, gt=0, description="First delay before failed messages are retried; doubles each time.")
    max_retry_backoff_s: float = Field(30.0, gt=0, description="Longest delay between retries.")
    io_concurrency: int = Field(16, ge=1, description="S3 calls (records written, objects read) in flight at once.")
