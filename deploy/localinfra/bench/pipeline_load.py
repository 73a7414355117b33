"""Load on the whole pipeline through its API: a burst of uploads, or uploads at a fixed rate
(open loop), measured until every image is announced on ``index.updated``."""

from __future__ import annotations

import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests
from confluent_kafka import Consumer, TopicPartition

from captioning_common.kafka import StageTopics, watermarks
from captioning_common.settings import KafkaSettings
from captioning_events.v1.index_pb2 import IndexUpdated
from localinfra.cpu_time import cpu_by_component, cpu_ms_per_item
from localinfra.prometheus import local_targets
from localinfra.settings import InfraConfig

INDEX_TOPIC = StageTopics("indexing").output(IndexUpdated)
UPLOADERS = 8


def _metric_total(text: str, metric: str, label: str) -> float:
    """Sum of the samples of ``metric`` carrying ``label`` (``name="value"``) in a Prometheus text exposition."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(metric + "{") and label in line)


def triton_counts(metrics_url: str, model: str = "captioner") -> tuple[float, float]:
    """(inference requests, executions) Triton counted for ``model`` so far."""
    text, label = requests.get(metrics_url, timeout=10).text, f'model="{model}"'
    return _metric_total(text, "nv_inference_count", label), _metric_total(text, "nv_inference_exec_count", label)


def index_folds(config: InfraConfig) -> tuple[float, float]:
    """(folds, seconds spent folding) the running indexing replicas counted so far."""
    folds = seconds = 0.0
    for url in local_targets(config)["indexing"]:
        try:
            text = requests.get(url, timeout=10).text
        except requests.ConnectionError:  # a replica that is not running
            continue
        folds += _metric_total(text, "captioning_stage_seconds_count", 'stage="index_fold"')
        seconds += _metric_total(text, "captioning_stage_seconds_sum", 'stage="index_fold"')
    return folds, seconds


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _index_events_from_now(kafka: KafkaSettings) -> Consumer:
    """A consumer positioned at the current end of ``index.updated``."""
    consumer = Consumer(kafka.client_config() | {"group.id": f"bench-{uuid.uuid4()}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(INDEX_TOPIC, p, high) for p, (_, high) in watermarks(consumer, INDEX_TOPIC).items()])
    return consumer


def _settled_unindexed(ingest: str, headers: dict[str, str], image_id: str) -> bool:
    status = requests.get(f"{ingest}/v1/images/{image_id}", headers=headers, timeout=30).json()
    return status["status"] == "failed" or status["verdict"] in ("review", "reject")


def _upload_all(ingest: str, headers: dict[str, str], images: list[bytes], rate: float | None) -> list[requests.Response]:
    """POST every image; at once (``rate`` None) or the i-th at i / ``rate`` seconds."""
    started = time.monotonic()

    def upload(indexed: tuple[int, bytes]) -> requests.Response:
        index, data = indexed
        if rate:
            time.sleep(max(0.0, started + index / rate - time.monotonic()))
        return requests.post(f"{ingest}/v1/images", files={"file": ("i.png", data)}, headers=headers, timeout=60)

    with ThreadPoolExecutor(UPLOADERS) as pool:
        return list(pool.map(upload, enumerate(images)))


def measure(ingest: str, headers: dict[str, str], images: list[bytes], config: InfraConfig, timeout_s: float, rate: float | None = None) -> dict:
    """Upload ``images`` (a burst, or at ``rate`` per second) and wait until each is indexed or settled otherwise.

    Returns the run's figures (throughput and latencies count the indexed images; the index
    writer's folds during the run and their seconds, which stall it) and, under
    ``cpu_ms_per_image``, the CPU milliseconds each component spent per uploaded image.
    """
    kafka, metrics_url = config.kafka, config.triton.metrics_url
    cpu_before = cpu_by_component(config)
    before, folds_before = triton_counts(metrics_url), index_folds(config)
    consumer = _index_events_from_now(kafka)
    try:
        started = time.monotonic()
        responses = _upload_all(ingest, headers, images, rate)
        ids = {response.json()["id"] for response in responses if response.status_code == 202}
        if len(ids) != len(images):
            raise RuntimeError(f"{len(images) - len(ids)} uploads were not accepted as new images")
        uploaded_s = time.monotonic() - started
        pending = set(ids)
        last_event = time.monotonic()
        while pending:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{len(pending)} images not indexed after {timeout_s:.0f}s")
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                pending.discard(message.key().decode())
                last_event = time.monotonic()
            elif time.monotonic() - last_event > 3:  # quiet: images held for review, rejected or failed are never indexed
                pending -= {image_id for image_id in pending if _settled_unindexed(ingest, headers, image_id)}
                last_event = time.monotonic()
        elapsed = time.monotonic() - started
    finally:
        consumer.close()
    after, folds_after = triton_counts(metrics_url), index_folds(config)
    cpu = cpu_ms_per_item(cpu_before, cpu_by_component(config), len(images))
    statuses = [requests.get(f"{ingest}/v1/images/{image_id}", headers=headers, timeout=30).json() for image_id in ids]
    statuses = [status for status in statuses if status["status"] == "indexed"]
    to_caption = [_seconds_between(s["received_at"], s["captioned_at"]) for s in statuses]
    to_index = [_seconds_between(s["received_at"], s["indexed_at"]) for s in statuses]
    index_cuts = statistics.quantiles(to_index, n=100, method="inclusive")
    executions = after[1] - before[1]
    return {
        "images": len(ids),
        "not_indexed": len(ids) - len(statuses),
        "offered_per_s": rate or 0.0,
        "upload_s": uploaded_s,
        "total_s": elapsed,
        "images_per_s": len(statuses) / elapsed,
        "caption_p50_s": statistics.median(to_caption),
        "caption_p95_s": statistics.quantiles(to_caption, n=20)[-1],
        "index_p50_s": statistics.median(to_index),
        "index_p95_s": index_cuts[94],
        "index_p99_s": index_cuts[98],
        "triton_mean_batch": (after[0] - before[0]) / executions if executions else 0.0,
        "index_folds": folds_after[0] - folds_before[0],
        "index_fold_s": folds_after[1] - folds_before[1],
        "cpu_ms_per_image": cpu,
        "index_latencies_s": sorted(to_index),
    }
