"""Settings of the moderation service (``CAPTIONING_MODERATION_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from captioning_common.stage import StageSettings


class ModerationSettings(StageSettings):
    """The stage's consumer and retries, classifiers, thresholds and the sensitive-attribute policy."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_MODERATION_", extra="ignore")

    port: int = Field(9402, description="Port of /metrics, /healthz, /readyz.")
    concurrency: int = Field(4, ge=1, description="Images of a batch moderated at once (the events of one image stay in order).")
    max_image_bytes: int = Field(
        20 * 1024 * 1024, description="Largest original fetched from S3, bytes; a larger one is dead-lettered (`object_too_large`)."
    )
    image_classifier: Literal["nudenet", "none"] = Field(
        "nudenet", description="Image classifier: `nudenet` (bundled ONNX detector, AGPL-3.0 licence text) or `none`."
    )
    nudity_reject_score: float = Field(0.85, description="Exposed-nudity detection score at or above which an image is rejected.")
    nudity_review_score: float = Field(0.65, description="Exposed-nudity detection score at or above which an image goes to review.")
    nudity_review_score_without_person: float = Field(
        0.9,
        description="Exposed-nudity score at or above which an image goes to review when the object detector found no person "
        "under the finding; such an image is never rejected on nudity alone.",
    )
    profanity_reject_score: float = Field(0.98, description="Caption profanity probability at or above which the item is rejected.")
    profanity_review_score: float = Field(0.85, description="Caption profanity probability at or above which the item goes to review.")
    sensitive_attribute_policy: Literal["neutralise", "flag"] = Field(
        "neutralise",
        description="Captions guessing sensitive attributes of people: `neutralise` rewrites them, `flag` sends the item to review.",
    )
