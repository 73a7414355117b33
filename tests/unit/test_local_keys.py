"""Local runs get generated API, reviewer and signing keys unless the variables are set."""

from __future__ import annotations

import stat

import pytest

from captioning_common.reviews import parse_reviewer_keys
from localinfra.pipeline import PipelineService, local_api_key, local_review_env, local_reviewer_key
from localinfra.settings import InfraConfig, LocalInfraSettings


@pytest.fixture()
def config(tmp_path, monkeypatch: pytest.MonkeyPatch) -> InfraConfig:
    for name in ("CAPTIONING_API_KEYS", "CAPTIONING_REVIEWER_KEYS", "CAPTIONING_REVIEW_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    return InfraConfig(local=LocalInfraSettings(state_dir=tmp_path))


def test_unset_keys_are_generated_once_private_and_distinct(config: InfraConfig) -> None:
    env = local_review_env(config)
    assert parse_reviewer_keys(env["CAPTIONING_REVIEWER_KEYS"]) == {local_reviewer_key(config): "local-reviewer"}
    assert local_review_env(config) == env  # kept, not regenerated
    secrets = {local_api_key(config), local_reviewer_key(config), env["CAPTIONING_REVIEW_SIGNING_KEY"]}
    assert len(secrets) == 3 and all(len(s) >= 32 for s in secrets)
    for name in ("api-key", "reviewer-key", "review-signing-key"):
        assert stat.S_IMODE((config.state_dir / name).stat().st_mode) == 0o600
    _, service_env = PipelineService(config, "moderation").command()
    assert service_env["CAPTIONING_REVIEW_SIGNING_KEY"] == env["CAPTIONING_REVIEW_SIGNING_KEY"]


def test_configured_keys_are_used_as_they_are(config: InfraConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTIONING_REVIEWER_KEYS", "ann=key-of-ann,bo=key-of-bo")
    monkeypatch.setenv("CAPTIONING_REVIEW_SIGNING_KEY", "configured-signing-key")
    assert local_review_env(config) == {}
    assert local_reviewer_key(config) == "key-of-ann"
    assert not (config.state_dir / "reviewer-key").exists()
