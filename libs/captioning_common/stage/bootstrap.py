"""One bootstrap for every stage service: settings, logging, metrics and the real adapters.

A service's ``__main__`` builds its ``Stage`` from a ``StageService`` and either
runs it (``run``: consume with ``/metrics``, ``/healthz``, ``/readyz``) or
consumes next to an HTTP API (``background``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import threading
from typing import Generic, Protocol, TypeVar

from captioning_common.kafka.consumer import BatchConsumer
from captioning_common.kafka.producer import EventProducer
from captioning_common.kafka.topics import StageTopics
from captioning_common.logs import configure_logging
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import OpsServer
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings, S3Settings, ServiceSettings
from captioning_common.stage.runtime import RetryPolicy, Stage, StageRuntime
from captioning_common.stage.settings import StageSettings
from captioning_common.storage import ObjectStore

log = logging.getLogger(__name__)


S = TypeVar("S", bound=StageSettings)


class StageService(Generic[S]):
    """The real adapters of one service: Kafka producer, S3 store and records, metrics, its topics."""

    @classmethod
    def from_cli(cls, name: str, settings: type[S], description: str) -> StageService[S]:
        """The service ``python -m services.<name>`` runs: ``--help`` prints ``description``; settings come from the environment."""
        argparse.ArgumentParser(
            prog=f"python -m services.{name}",
            description=f"{description} Configured by CAPTIONING_* environment variables (see the README).",
        ).parse_args()
        return cls(name, settings())

    def __init__(self, name: str, settings: S) -> None:
        self.name = name
        self.settings = settings
        self.service = ServiceSettings()
        self.kafka = KafkaSettings()
        self.s3 = S3Settings()
        configure_logging(name, self.service.log_level)
        self.metrics = PipelineMetrics(name)
        self.store = ObjectStore(self.s3)
        self.records = ImageRecords(self.store)
        self.producer = EventProducer(self.kafka, source=name)
        self.topics = StageTopics(name)

    def runtime(self, stage: Stage) -> StageRuntime:
        """The stage runtime of ``stage`` on this service's input topics and consumer group."""
        inputs = self.topics.inputs
        consumer = BatchConsumer(
            self.kafka,
            self.settings.group_id or self.name,
            inputs,
            batch_size=self.settings.batch_size,
            batch_timeout_s=self.settings.batch_wait_ms / 1000,
        )
        return StageRuntime(
            stage, inputs, consumer, self.producer, self.records, self.metrics, RetryPolicy.of(self.settings),
            io_concurrency=self.settings.io_concurrency, max_message_bytes=self.kafka.max_message_bytes,
        )

    def run(self, stage: Stage, port: int) -> None:
        """Consume until SIGTERM/SIGINT with the ops endpoints on ``port``; then commit, flush and close."""
        runtime = self.runtime(stage)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: runtime.stop())
        ops = OpsServer(self.metrics.registry, self.service.bind_host, port, liveness={"process": lambda: True}, readiness=runtime.readiness())
        ops.start()
        try:
            runtime.run()
        finally:
            self.producer.close()
            ops.stop()
            log.info("stopped")

    def background(self, stage: Stage, lease: Lease | None = None) -> BackgroundStage:
        """The stage consuming on a thread next to an HTTP API (only while holding ``lease``, when given)."""
        return BackgroundStage(self.runtime(stage), self.producer, lease)


class Lease(Protocol):
    """An exclusive right to run a stage (e.g. the index writer's)."""

    ttl_s: float

    def acquire(self) -> bool:
        """Take or renew the lease; True when held."""

    def release(self) -> None:
        """Give the lease up."""


class BackgroundStage:
    """A stage runtime on a thread; ``stop`` finishes the in-flight batch, commits and flushes the producer.

    With a lease, the stage joins its consumer group only once the lease is held, and
    renews it every third of its lifetime; a holder that fails to renew stops
    consuming and asks its process to exit (it restarts and waits for the lease).
    """

    def __init__(self, runtime: StageRuntime, producer: EventProducer, lease: Lease | None = None) -> None:
        self.runtime = runtime
        self._producer = producer
        self._lease = lease
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=runtime.stage.name, daemon=True)

    def _run(self) -> None:
        if self._lease is not None:
            while not self._try(self._lease.acquire):
                if self._stopping.wait(self._lease.ttl_s / 3):
                    return
            threading.Thread(target=self._renew, name="lease", daemon=True).start()
        self.runtime.run()

    def _renew(self) -> None:
        while not self._stopping.wait(self._lease.ttl_s / 3):
            if not self._try(self._lease.acquire):
                log.error("lost the lease; stopping")
                self.runtime.stop()
                os.kill(os.getpid(), signal.SIGTERM)
                return

    @staticmethod
    def _try(acquire) -> bool:
        try:
            return acquire()
        except Exception as exc:  # the store is unreachable: not held
            log.warning("lease check failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False

    def start(self) -> None:
        """Start consuming (once the lease, if any, is held)."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the in-flight batch, commit, leave the group, release the lease; then deliver what is queued."""
        self._stopping.set()
        self.runtime.stop()
        self._thread.join()
        if self._lease is not None:
            self._try(lambda: self._lease.release() or True)
        self._producer.close()
        log.info("stopped")

    def lifespan(self):
        """A FastAPI lifespan: consume while the API serves; at shutdown, ``stop``."""

        @contextlib.asynccontextmanager
        async def lifespan(app):
            self.start()
            yield
            self.stop()

        return lifespan
