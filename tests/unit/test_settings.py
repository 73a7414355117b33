"""Settings come from CAPTIONING_* variables; the README table is generated from them."""

from __future__ import annotations

import pytest

from captioning_common.settings import KafkaSettings, S3Settings
from captioning_common.settings_doc import settings_table
from tests.conftest import REPO_ROOT


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONING_KAFKA_BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    monkeypatch.setenv("CAPTIONING_S3_BUCKET", "media")
    assert KafkaSettings().client_config()["bootstrap.servers"] == "broker-1:9092,broker-2:9092"
    assert S3Settings().bucket == "media"


def test_sasl_credentials_reach_librdkafka_but_not_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONING_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CAPTIONING_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("CAPTIONING_KAFKA_SASL_PASSWORD", "hunter2-secret")
    settings = KafkaSettings()
    assert settings.client_config()["sasl.password"] == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings.model_dump())


def test_s3_secret_is_not_printed() -> None:
    assert "captioning-local-secret" not in repr(S3Settings())


def test_readme_table_lists_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert settings_table() in readme, "README settings table is stale: paste `make settings-table` output"
