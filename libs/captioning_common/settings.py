"""Typed settings read from environment variables prefixed ``CAPTIONING_``.

Each concern has its own class and sub-prefix (``CAPTIONING_KAFKA_``,
``CAPTIONING_S3_``, ...). ``python -m captioning_common.settings_doc`` prints the
table of every setting that the README carries.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from captioning_common.reviews import parse_reviewer_keys

PREFIX = "CAPTIONING_"


def _config(sub_prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=PREFIX + sub_prefix, extra="ignore")


class EnvironmentSettings(BaseSettings):
    """What kind of deployment this process belongs to."""

    model_config = _config("")

    environment: Literal["development", "production"] = Field(
        "development",
        description="`development` (the local servers) or `production`. In production, every setting still at a "
        "default that only suits the local servers (the S3 access key and secret) is refused at startup.",
    )


def refuse_local_defaults(settings: BaseSettings, *names: str) -> None:
    """In production, ValueError naming each of ``names`` that ``settings`` leaves at its default.

    For settings whose default only suits the local servers; call it from a
    ``model_validator(mode="after")``. The values themselves are never printed.
    """
    if EnvironmentSettings().environment != "production":
        return
    prefix = settings.model_config.get("env_prefix", "")
    fields = type(settings).model_fields
    kept = [(prefix + name).upper() for name in names if _plain(getattr(settings, name)) == _plain(fields[name].default)]
    if kept:
        raise ValueError(f"{', '.join(kept)} keep their local-only default, refused when {PREFIX}ENVIRONMENT=production: set them")


def _plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class KafkaSettings(BaseSettings):
    """Connection to the Kafka cluster."""

    model_config = _config("KAFKA_")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated broker list.")
    security_protocol: str = Field("PLAINTEXT", description="librdkafka `security.protocol`.")
    sasl_mechanism: str | None = Field(None, description="librdkafka `sasl.mechanism`, when SASL is used.")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    delivery_timeout_ms: int = Field(30000, description="How long a produce may take before it fails.")
    session_timeout_ms: int = Field(10000, description="Consumer group session timeout.")
    max_poll_interval_ms: int = Field(300000, description="Longest allowed gap between polls of a consumer.")
    client_id: str | None = Field(
        None, description="librdkafka `client.id`: names this process in the brokers' consumer-group view and logs (e.g. the pod name); "
        "unset: librdkafka's default. The local tools set it to each service instance's name.",
    )
    max_message_bytes: int = Field(
        1_000_000,
        description="Largest record the brokers accept (their `message.max.bytes`); the producer refuses larger ones, "
        "and a larger dead letter keeps its original value in S3.",
    )

    def client_config(self) -> dict[str, str | int]:
        """librdkafka settings common to producers, consumers and admin clients."""
        config: dict[str, str | int] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.client_id:
            config["client.id"] = self.client_id
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username or ""
            config["sasl.password"] = self.sasl_password.get_secret_value() if self.sasl_password else ""
        return config


class S3Settings(BaseSettings):
    """Connection to the S3-compatible object store."""

    model_config = _config("S3_")

    endpoint_url: str = Field("http://127.0.0.1:9000", description="S3 API endpoint.")
    region: str = Field("us-east-1", description="Signing region.")
    access_key_id: str = Field("captioning", description="Access key id.")
    secret_access_key: SecretStr = Field(
        SecretStr("captioning-local-secret"),
        description="Secret key (never logged). The default only suits the local servers.",
    )
    bucket: str = Field("captioning", description="Bucket for originals, caption records and the index.")
    max_attempts: int = Field(5, description="Attempts per S3 call (botocore standard retry mode).")
    presign_expiry_s: int = Field(3600, description="Lifetime of presigned GET URLs, seconds.")
    max_record_bytes: int = Field(4 * 1024 * 1024, description="Largest per-image JSON record read back from the bucket, bytes.")

    @model_validator(mode="after")
    def _refuse_local_credentials(self) -> S3Settings:
        refuse_local_defaults(self, "access_key_id", "secret_access_key")
        return self


class TritonSettings(BaseSettings):
    """Connection to Triton Inference Server."""

    model_config = _config("TRITON_")

    grpc_url: str = Field("127.0.0.1:8001", description="Triton gRPC endpoint (host:port).")
    http_url: str = Field("127.0.0.1:8000", description="Triton HTTP endpoint (host:port).")
    metrics_url: str = Field("http://127.0.0.1:8002/metrics", description="Triton Prometheus metrics URL.")
    request_timeout_s: float = Field(30.0, description="Timeout of one inference request, seconds.")


class ServiceSettings(BaseSettings):
    """Process-level settings every service reads."""

    model_config = _config("")

    log_level: str = Field("INFO", description="Python log level.")
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated keys accepted in the `X-API-Key` header of the ingest and search APIs (never logged). Empty: every `/v1` request gets 401.",
    )
    reviewer_keys: SecretStr | None = Field(
        None,
        description="Reviewer credentials `name=key,name2=key2` (never logged): only these keys may `POST /v1/reviews/{id}`, "
        "and the reviewer recorded is the name bound to the key; they may also read `GET /v1/images/{id}`. Unset: every review gets 401.",
    )
    review_signing_key: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key that signs every `ReviewDecision` and with which decisions are verified (never logged). "
        "Unset: `POST /v1/reviews/{id}` answers 503 `reviews_unavailable`.",
    )
    operator_keys: SecretStr | None = Field(
        None,
        description="Operator credentials `name=key,name2=key2` (never logged): only these keys may list and replay dead letters "
        "in the web console, and the operator logged with a replay is the name bound to the key. Unset: every dead-letter request gets 401.",
    )
    bind_host: str = Field("127.0.0.1", description="Address every service's HTTP server (API or /metrics, /healthz, /readyz) binds to.")

    def api_key_list(self) -> list[str]:
        """The configured API keys."""
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]

    def reviewers(self) -> dict[str, str]:
        """``{key: reviewer name}`` of `CAPTIONING_REVIEWER_KEYS`; ValueError when malformed or a key is also an API key."""
        reviewers = parse_reviewer_keys(self.reviewer_keys.get_secret_value() if self.reviewer_keys else "")
        if set(reviewers) & set(self.api_key_list()):
            raise ValueError("a key is in both CAPTIONING_API_KEYS and CAPTIONING_REVIEWER_KEYS: give reviewers keys of their own")
        return reviewers

    def operators(self) -> dict[str, str]:
        """``{key: operator name}`` of `CAPTIONING_OPERATOR_KEYS`; ValueError when malformed or a key is also an API or reviewer key."""
        operators = parse_reviewer_keys(self.operator_keys.get_secret_value() if self.operator_keys else "", "CAPTIONING_OPERATOR_KEYS")
        if set(operators) & (set(self.api_key_list()) | set(self.reviewers())):
            raise ValueError("a key of CAPTIONING_OPERATOR_KEYS is also an API or reviewer key: give operators keys of their own")
        return operators

    def signing_key(self) -> str:
        """The review signing key; empty when unset."""
        return self.review_signing_key.get_secret_value() if self.review_signing_key else ""
