"""Prometheus metrics every stage of the pipeline exposes, under one naming scheme."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})


def method_label(method: str) -> str:
    """``method`` when it is a standard HTTP method, else ``other``: clients choose the verb, label values must stay few."""
    return method if method in HTTP_METHODS else "other"


class PipelineMetrics:
    """The standard metrics of one service, in a registry of its own.

    Names: ``captioning_messages_total{topic,outcome}``, ``captioning_stage_seconds{stage}``,
    ``captioning_batch_size``, ``captioning_errors_total{reason}``,
    ``captioning_dead_letters_total{topic,reason}``, ``captioning_consumer_lag{topic,partition}``,
    ``captioning_http_requests_total{method,route,code}``; and the process's own
    ``process_*`` (``process_start_time_seconds`` shows restarts) and ``python_info``;
    every one labelled with ``service``.
    """

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        self.messages = Counter(
            "captioning_messages", "Messages handled, by topic and outcome.", ["service", "topic", "outcome"], registry=self.registry
        )
        self.stage_seconds = Histogram(
            "captioning_stage_seconds", "Latency of each processing stage.", ["service", "stage"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.batch_size = Histogram(
            "captioning_batch_size", "Messages per processed batch.", ["service"], buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.errors = Counter("captioning_errors", "Errors by reason.", ["service", "reason"], registry=self.registry)
        self.dead_letters = Counter(
            "captioning_dead_letters", "Messages sent to a dead-letter topic.", ["service", "topic", "reason"], registry=self.registry
        )
        self.requests = Counter(
            "captioning_http_requests", "HTTP requests by route and status code.", ["service", "method", "route", "code"], registry=self.registry
        )
        self.consumer_lag = Gauge(
            "captioning_consumer_lag", "Messages behind the high watermark.", ["service", "topic", "partition"], registry=self.registry
        )
        self.registry.register(ServiceLabelled(ProcessCollector(registry=None), service))
        self.registry.register(ServiceLabelled(PlatformCollector(registry=None), service))
        self._lag_partitions: set[tuple[str, int]] = set()

    def message(self, topic: str, outcome: str) -> None:
        """Count one message of ``topic`` with ``outcome`` (e.g. ok, dead_letter, retry)."""
        self.messages.labels(self.service, topic, outcome).inc()

    def request(self, method: str, route: str, status: int) -> None:
        """Count one answered HTTP request (an unknown method counts as ``other``)."""
        self.requests.labels(self.service, method_label(method), route, str(status)).inc()

    def error(self, reason: str) -> None:
        """Count one error of ``reason``."""
        self.errors.labels(self.service, reason).inc()

    def dead_letter(self, topic: str, reason: str) -> None:
        """Count one record sent to the dead-letter topic ``topic`` for ``reason``."""
        self.dead_letters.labels(self.service, topic, reason).inc()

    def observe_batch(self, size: int) -> None:
        """Record the size of one processed batch."""
        self.batch_size.labels(self.service).observe(size)

    def set_lag(self, lag: dict[tuple[str, int], int]) -> None:
        """Publish consumer lag per owned (topic, partition); the series of a partition no longer in ``lag`` (revoked) goes."""
        for topic, partition in self._lag_partitions - lag.keys():
            self.consumer_lag.remove(self.service, topic, str(partition))
        for (topic, partition), value in lag.items():
            self.consumer_lag.labels(self.service, topic, str(partition)).set(value)
        self._lag_partitions = set(lag)

    @contextlib.contextmanager
    def time_stage(self, stage: str) -> Iterator[None]:
        """Observe the duration of the block as ``stage`` latency."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(self.service, stage).observe(time.perf_counter() - start)


class ServiceLabelled(Collector):
    """Another collector's metrics with a ``service`` label added to every sample."""

    def __init__(self, collector: Collector, service: str) -> None:
        self.collector = collector
        self.service = service

    def collect(self) -> Iterable[Metric]:
        for family in self.collector.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            labelled.samples = [sample._replace(labels={**sample.labels, "service": self.service}) for sample in family.samples]
            yield labelled
