"""Settings of the local infrastructure (prefix ``CAPTIONING_LOCAL_``).

Ports come from the connection settings the services use (``CAPTIONING_KAFKA_*``,
``CAPTIONING_S3_*``, ``CAPTIONING_TRITON_*``), so what is started is what they reach.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from captioning_common.settings import KafkaSettings, S3Settings, TritonSettings


class LocalInfraSettings(BaseSettings):
    """Where and how the local servers are installed and run."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_LOCAL_", extra="ignore")

    state_dir: Path = Field(Path(".local"), description="Binaries, data and logs of the local servers (git-ignored).")
    install_dir: Path | None = Field(
        None, description="Where the servers' binaries are installed, shared by several state directories; empty: the state directory."
    )
    java: str = Field("java", description="Java 17+ executable that runs Kafka.")
    kafka_controller_port: int = Field(9093, description="Port of the local KRaft controller listener (node i of a cluster: this + i - 1).")
    s3_console_port: int = Field(9001, description="Port of the local MinIO console listener (browser off).")
    kafka_heap: str = Field("768m", description="JVM heap (-Xmx/-Xms) of the local Kafka broker.")
    replica_port_offset: int = Field(100, description="Port distance between replicas of a service: replica r listens on its port + r x this.")
    model_repository: Path = Field(Path("model_repository"), description="Model repository the local Triton serves.")
    triton_model_config_name: str = Field("", description="Triton `--model-config-name` (e.g. `gpu`); empty: config.pbtxt.")
    triton_model_control_mode: str = Field("none", description="Triton `--model-control-mode` (none, explicit, poll).")
    start_timeout_s: float = Field(180.0, description="How long `up` waits for each server to become healthy.")
    prometheus_port: int = Field(9090, description="Port of the local Prometheus (web UI and HTTP API).")
    prometheus_scrape_interval_s: float = Field(2.0, description="How often the local Prometheus scrapes every target and evaluates the rules.")
    prometheus_retention: str = Field("3d", description="How long the local Prometheus keeps samples (the slowest SLO burn-rate window is 3d).")


def host_port(address: str) -> tuple[str, int]:
    """(host, port) of ``host:port`` or of a URL."""
    if "//" in address:
        parts = urlsplit(address)
        return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class InfraConfig:
    """Everything the components need: local settings plus the services' connection settings."""

    def __init__(
        self,
        local: LocalInfraSettings | None = None,
        kafka: KafkaSettings | None = None,
        s3: S3Settings | None = None,
        triton: TritonSettings | None = None,
    ) -> None:
        self.local = local or LocalInfraSettings()
        self.kafka = kafka or KafkaSettings()
        self.s3 = s3 or S3Settings()
        self.triton = triton or TritonSettings()

    @property
    def state_dir(self) -> Path:
        """Absolute state directory."""
        return self.local.state_dir.resolve()

    @property
    def install_root(self) -> Path:
        """Absolute directory of the installed binaries (the state directory unless ``install_dir`` is set)."""
        return (self.local.install_dir or self.local.state_dir).resolve()
