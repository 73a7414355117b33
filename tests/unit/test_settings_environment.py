"""In production, settings still at a default that only suits the local servers are refused."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from captioning_common.settings import EnvironmentSettings, KafkaSettings, S3Settings, refuse_local_defaults


def test_development_is_the_default_and_accepts_the_local_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPTIONING_ENVIRONMENT", raising=False)
    assert EnvironmentSettings().environment == "development"
    assert S3Settings().secret_access_key.get_secret_value() == "captioning-local-secret"


def test_production_refuses_the_local_s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONING_ENVIRONMENT", "production")
    with pytest.raises(ValidationError) as refused:
        S3Settings()
    message = str(refused.value)
    assert "CAPTIONING_S3_ACCESS_KEY_ID" in message and "CAPTIONING_S3_SECRET_ACCESS_KEY" in message
    assert "CAPTIONING_ENVIRONMENT=production" in message
    assert "captioning-local-secret" not in message, "the refused secret itself is never printed"

    monkeypatch.setenv("CAPTIONING_S3_ACCESS_KEY_ID", "AKIAPRODUCTION")
    with pytest.raises(ValidationError, match="CAPTIONING_S3_SECRET_ACCESS_KEY"):
        S3Settings()
    monkeypatch.setenv("CAPTIONING_S3_SECRET_ACCESS_KEY", "a-real-secret")
    assert S3Settings().access_key_id == "AKIAPRODUCTION"
    assert KafkaSettings().security_protocol == "PLAINTEXT", "only the local credentials are refused"


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONING_ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="development.*production"):
        EnvironmentSettings()


class OtherSettings(BaseSettings):
    """A settings class of another concern that refuses its own local default the same way."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_OTHER_", extra="ignore")
    token: str = Field("local-token", description="A token.")

    @model_validator(mode="after")
    def _refuse_local(self) -> OtherSettings:
        refuse_local_defaults(self, "token")
        return self


def test_the_helper_serves_any_settings_class(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OtherSettings().token == "local-token"
    monkeypatch.setenv("CAPTIONING_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="CAPTIONING_OTHER_TOKEN"):
        OtherSettings()
    monkeypatch.setenv("CAPTIONING_OTHER_TOKEN", "real")
    assert OtherSettings().token == "real"
