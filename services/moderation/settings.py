"""Settings of the moderation service (``CAPTIONING_MODERATION_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModerationSettings(BaseSettings):
    """Classifiers, thresholds and the sensitive-attribute policy."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_MODERATION_", extra="ignore")

    port: int = Field(9402, description="Port of /metrics, /healthz, /readyz.")
    group_id: str = Field("moderation", description="Consumer group reading `captions.generated` and `moderation.decisions`.")
    batch_size: int = Field(32, description="Most records per batch.")
    concurrency: int = Field(4, description="Images of a batch moderated at once (records of one image stay in order).")
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
