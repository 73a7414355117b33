"""Fixtures that give tests the real Kafka, S3 and Triton servers.

A server that already answers where the settings point is used as it is;
otherwise it is installed if needed, started for the test session, provisioned
(topics, bucket), and stopped when the session ends. Only tests that ask for a
server's fixture cause it to start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localinfra.components import Component
from localinfra.registry import components
from localinfra.settings import InfraConfig, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServerPool:
    """Starts each real server at most once per test session and remembers what it started."""

    def __init__(self) -> None:
        os.chdir(REPO_ROOT)  # the state directory and the model repository are relative to the repo
        self.config = InfraConfig()
        self._ready: dict[str, Component] = {}
        self._started: list[Component] = []

    def ensure(self, name: str) -> InfraConfig:
        if name not in self._ready:
            (component,) = components(self.config, [name])
            if not component.healthy():
                if not component.installed():
                    component.install()
                self._started.append(component)  # stopped at the end even when its start fails
                component.start()
            component.provision()
            self._ready[name] = component
        return self.config

    def component(self, name: str) -> Component:
        """The running component of ``name`` (started or found by ``ensure``)."""
        self.ensure(name)
        return self._ready[name]

    def start_extra(self, component: Component) -> Component:
        """Start a server of the test's own (e.g. a Triton on a test model repository)."""
        if not component.installed():
            component.install()
        self._started.append(component)  # stopped at the end even when its start fails
        component.start()
        return component

    def stop_all(self) -> None:
        for component in reversed(self._started):
            component.stop()
        self._started.clear()


@pytest.fixture(scope="session")
def servers() -> Iterator[ServerPool]:
    pool = ServerPool()
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def kafka(servers: ServerPool):
    """KafkaSettings of a running broker with the declared topics."""
    return servers.ensure("kafka").kafka


@pytest.fixture(scope="session")
def s3(servers: ServerPool):
    """S3Settings of a running S3 server with the bucket."""
    return servers.ensure("s3").s3


@pytest.fixture(scope="session")
def triton(servers: ServerPool):
    """TritonSettings of the running Triton serving model_repository/."""
    return servers.ensure("triton").triton


def start_triton(pool: ServerPool, repository: Path, instance: str):
    """A Triton of a test's own serving ``repository`` on free ports; returns (settings, component)."""
    from captioning_common.settings import TritonSettings
    from localinfra.settings import LocalInfraSettings
    from localinfra.triton import Triton

    settings = TritonSettings(
        grpc_url=f"127.0.0.1:{free_port()}",
        http_url=f"127.0.0.1:{free_port()}",
        metrics_url=f"http://127.0.0.1:{free_port()}/metrics",
    )
    local = LocalInfraSettings(model_repository=repository)
    component = pool.start_extra(Triton(InfraConfig(local=local, triton=settings), instance=instance))
    return settings, component


class Pipeline:
    """The four services of a test session, started on free ports with their own consumer groups."""

    API_KEY = "test-key"
    REVIEWER = "test-reviewer"
    REVIEWER_KEY = "test-reviewer-key"

    def __init__(self, pool: ServerPool) -> None:
        from captioning_common.storage import ObjectStore
        from localinfra.pipeline import SERVICE_NAMES, PipelineService

        # A bucket of its own keeps the tests apart from a pipeline left running by `make up`.
        self.s3 = pool.config.s3.model_copy(update={"bucket": f"{pool.config.s3.bucket}-test"})
        ObjectStore(self.s3).ensure_bucket()
        # A fresh index per session: search results are checked against this session's images.
        self.index_prefix = f"index-{os.urandom(4).hex()}"
        self.env = {
            "CAPTIONING_S3_BUCKET": self.s3.bucket,
            "CAPTIONING_INDEXING_INDEX_PREFIX": self.index_prefix,
            "CAPTIONING_API_KEYS": self.API_KEY,
            "CAPTIONING_REVIEWER_KEYS": f"{self.REVIEWER}={self.REVIEWER_KEY}",
            "CAPTIONING_REVIEW_SIGNING_KEY": os.urandom(16).hex(),
            "CAPTIONING_INGEST_PORT": str(free_port()),
            "CAPTIONING_CAPTION_PORT": str(free_port()),
            "CAPTIONING_MODERATION_PORT": str(free_port()),
            "CAPTIONING_INDEXING_PORT": str(free_port()),
            # Items whose captions guess sensitive attributes go to review, so the review flow is exercised.
            "CAPTIONING_MODERATION_SENSITIVE_ATTRIBUTE_POLICY": "flag",
        }
        for name in SERVICE_NAMES:
            self.env[f"CAPTIONING_{name.upper()}_GROUP_ID"] = f"test-{name}"
        self.services = {
            name: PipelineService(pool.config, name, env=self.env, instance=f"test-{name}") for name in SERVICE_NAMES
        }
        for service in self.services.values():
            pool.start_extra(service)

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.env['CAPTIONING_INGEST_PORT']}"

    @property
    def search_url(self) -> str:
        return f"http://127.0.0.1:{self.env['CAPTIONING_INDEXING_PORT']}"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.API_KEY}

    @property
    def reviewer_headers(self) -> dict[str, str]:
        """Headers of reviewer ``REVIEWER``, the only key that may decide reviews."""
        return {"X-API-Key": self.REVIEWER_KEY}


@pytest.fixture(scope="session")
def pipeline(servers: ServerPool, kafka, s3, triton) -> Iterator[Pipeline]:
    """The ingest, caption, moderation and indexing services, running against the real servers."""
    from captioning_common.storage import ObjectStore

    running = Pipeline(servers)
    yield running
    running.services["indexing"].stop()
    store = ObjectStore(running.s3)
    for item in list(store.list(running.index_prefix + "/")):
        store.delete(item.key)
