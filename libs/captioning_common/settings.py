"""Typed settings read from environment variables prefixed ``CAPTIONING_``.

Each concern has its own class and sub-prefix (``CAPTIONING_KAFKA_``,
``CAPTIONING_S3_``, ...). ``python -m captioning_common.settings_doc`` prints the
table of every setting that the README carries.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "CAPTIONING_"


def _config(sub_prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=PREFIX + sub_prefix, extra="ignore")


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

    def client_config(self) -> dict[str, str | int]:
        """librdkafka settings common to producers, consumers and admin clients."""
        config: dict[str, str | int] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
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
    bind_host: str = Field("127.0.0.1", description="Address every service's HTTP server (API or /metrics, /healthz, /readyz) binds to.")

    def api_key_list(self) -> list[str]:
        """The configured API keys."""
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]
