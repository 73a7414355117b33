"""The servers and services of a chaos run: a state directory and ports of their own.

Nothing here reaches the default servers: Kafka is a three-node cluster on
``port_base`` + 92..94 (controllers + 192..194), MinIO on ``port_base`` (+1 console),
Triton on + 800..802, the services on + 880 (ingest), + 881 (indexing), + 401 (caption),
+ 402 (moderation), replicas 100 ports further. Binaries come from the default state
directory's installs.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from captioning_common.kafka.topics import load_topics
from captioning_common.settings import KafkaSettings, S3Settings, TritonSettings
from localinfra.components import Component
from localinfra.kafka import KafkaNode, kafka_cluster, provision_cluster, replication, under_replicated
from localinfra.pipeline import SERVICE_NAMES, PipelineService
from localinfra.s3 import S3Server
from localinfra.settings import InfraConfig, LocalInfraSettings
from localinfra.triton import Triton

REVIEWER = "chaos-reviewer"
SERVICE_PORTS = {"ingest": 880, "indexing": 881, "caption": 401, "moderation": 402}
# The stages' input topics, used when the topic spec does not name its consumers.
STAGE_INPUTS = {
    "ingest": ("images.submitted",),
    "caption": ("images.uploaded",),
    "moderation": ("captions.generated", "moderation.decisions"),
    "indexing": ("captions.moderated",),
}


class ChaosEnvironment:
    """Builds, starts and stops the run's cluster, MinIO, Triton and services (``caption_replicas`` caption members)."""

    def __init__(self, state_dir: Path, port_base: int, caption_replicas: int = 2, kafka_heap: str = "320m") -> None:
        outer = LocalInfraSettings()
        self.port_base = port_base
        self.api_key = secrets.token_urlsafe(18)
        self.reviewer_key = secrets.token_urlsafe(18)
        local = LocalInfraSettings(
            state_dir=state_dir,
            install_dir=InfraConfig(local=outer).install_root,
            kafka_controller_port=port_base + 192,
            s3_console_port=port_base + 1,
            kafka_heap=kafka_heap,
            model_repository=outer.model_repository.resolve(),
            triton_model_config_name=outer.triton_model_config_name,
            start_timeout_s=240.0,
        )
        kafka = KafkaSettings(bootstrap_servers=",".join(f"127.0.0.1:{port_base + 92 + i}" for i in range(3)))
        s3 = S3Settings(endpoint_url=f"http://127.0.0.1:{port_base}", bucket="captioning")
        triton = TritonSettings(
            http_url=f"127.0.0.1:{port_base + 800}",
            grpc_url=f"127.0.0.1:{port_base + 801}",
            metrics_url=f"http://127.0.0.1:{port_base + 802}/metrics",
        )
        self.config = InfraConfig(local=local, kafka=kafka, s3=s3, triton=triton)
        self.group_ids = {name: f"chaos-{name}" for name in SERVICE_NAMES}
        self.env = self._service_env()
        self.brokers: list[KafkaNode] = kafka_cluster(self.config)
        self.s3 = S3Server(self.config)
        self.triton = Triton(self.config)
        self.services: list[PipelineService] = [PipelineService(self.config, name, env=self.env) for name in SERVICE_NAMES]
        self.services += [PipelineService(self.config, "caption", env=self.env, replica=r) for r in range(1, caption_replicas)]

    def _service_env(self) -> dict[str, str]:
        config, base = self.config, self.port_base
        env = {
            "CAPTIONING_LOCAL_STATE_DIR": str(config.state_dir),
            "CAPTIONING_ENVIRONMENT": "development",
            "CAPTIONING_KAFKA_BOOTSTRAP_SERVERS": config.kafka.bootstrap_servers,
            "CAPTIONING_S3_ENDPOINT_URL": config.s3.endpoint_url,
            "CAPTIONING_S3_BUCKET": config.s3.bucket,
            "CAPTIONING_TRITON_HTTP_URL": config.triton.http_url,
            "CAPTIONING_TRITON_GRPC_URL": config.triton.grpc_url,
            "CAPTIONING_TRITON_METRICS_URL": config.triton.metrics_url,
            "CAPTIONING_INDEXING_INDEX_PREFIX": "index",
            # Folds every 100 rows: several run beside the writer while services are killed and replay.
            "CAPTIONING_INDEXING_FOLD_ROWS": "100",
            "CAPTIONING_API_KEYS": self.api_key,
            "CAPTIONING_REVIEWER_KEYS": f"{REVIEWER}={self.reviewer_key}",
            "CAPTIONING_REVIEW_SIGNING_KEY": secrets.token_urlsafe(24),
            # Captions guessing a person's attributes go to review, so reviewer decisions are exercised.
            "CAPTIONING_MODERATION_SENSITIVE_ATTRIBUTE_POLICY": "flag",
        }
        for name, offset in SERVICE_PORTS.items():
            env[f"CAPTIONING_{name.upper()}_PORT"] = str(base + offset)
            env[f"CAPTIONING_{name.upper()}_GROUP_ID"] = self.group_ids[name]
        return env

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.port_base + SERVICE_PORTS['ingest']}"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def targets(self) -> dict[str, Component]:
        """Every process the faults may hit, by instance name."""
        components: list[Component] = [*self.brokers, self.s3, self.triton, *self.services]
        return {component.instance: component for component in components}

    def group_inputs(self) -> dict[str, tuple[str, ...]]:
        """Consumer group id -> the topics it consumes (from the spec's consumers, else ``STAGE_INPUTS``)."""
        spec = load_topics()
        groups = {}
        for stage, group in self.group_ids.items():
            declared = tuple(name for name, topic in spec.items() if stage in getattr(topic, "consumers", ()))
            groups[group] = declared or STAGE_INPUTS[stage]
        return groups

    def reset(self) -> None:
        """Remove the previous run's data and logs (the state directory belongs to chaos runs alone)."""
        self.stop()
        shutil.rmtree(self.config.state_dir, ignore_errors=True)
        self.config.state_dir.mkdir(parents=True)

    def start(self, log=print) -> dict[str, float]:
        """Start everything in dependency order; returns seconds until each was healthy."""
        timings: dict[str, float] = {}
        for component in (self.brokers[0], self.s3, self.triton):  # the nodes share one Kafka install
            if not component.installed():
                log(f"{component.name}: installing (first run)...")
                component.install()
        for node in self.brokers:
            node.prepare()
            command, env = node.command()
            node.process.start(command, env=env, cwd=node.home)
        for node in self.brokers:
            timings[node.instance] = node.start()
        log(provision_cluster(self.config, self.brokers))
        for server in (self.s3, self.triton):
            timings[server.instance] = server.start()
            summary = server.provision()
            log(f"{server.instance}: healthy in {timings[server.instance]:.1f}s{' - ' + summary if summary else ''}")
        for service in self.services:
            timings[service.instance] = service.start()
            log(f"{service.instance}: ready in {timings[service.instance]:.1f}s (port {service.port})")
        return timings

    def under_replicated(self) -> list[str]:
        return under_replicated(self.config)

    def replication(self) -> dict[str, int]:
        return replication(self.config)

    def stop(self) -> None:
        """Stop everything this environment may have started (services first)."""
        for component in reversed([self.s3, self.triton, *self.services]):
            component.stop()
        for node in self.brokers:  # the data is thrown away: no controlled shutdown of the last nodes
            node.process.stop(timeout_s=2)
