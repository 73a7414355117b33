"""``python -m localinfra.bench``: pipeline throughput with and without micro-batching, side by side
with Triton's ``captioner`` driven directly.

Starts the servers and the services (whatever is not running yet). First drives the
``captioner`` model alone, one request per image with English and Korean as the caption
service sends them, at several concurrencies: the captioner's limit on this machine.
Then for each caption batch size restarts the caption service with it, uploads a fresh
set of generated images through the API, and measures until every image is announced on
``index.updated``: end-to-end throughput, per-image latency from upload to caption and to
index, the mean batch size Triton executed (from Triton's own counters), and the CPU
milliseconds each component (Kafka, MinIO, Triton with its model processes, each
service) spent per image, read from ``/proc``. Prints the tables, the ratios against the
first batch size and against the captioner's limit; stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests
from confluent_kafka import Consumer, TopicPartition

from captioning_common.kafka import StageTopics, watermarks
from captioning_common.settings import KafkaSettings, TritonSettings
from captioning_events.v1.index_pb2 import IndexUpdated
from localinfra.cpu_time import cpu_by_component, cpu_ms_per_item
from localinfra.demo import scene_images
from localinfra.pipeline import PipelineService, local_api_key
from localinfra.registry import start_missing
from localinfra.settings import InfraConfig
from services.caption.triton_captioner import TritonCaptioner
from services.ingest.settings import IngestSettings

INDEX_TOPIC = StageTopics("indexing").output(IndexUpdated)
LANGUAGES = ["en", "ko"]


def captioner_limit(settings: TritonSettings, images: list[bytes], concurrencies: list[int]) -> dict[int, float]:
    """Images/s of the ``captioner`` model driven directly, per number of requests kept in flight."""

    async def drive(concurrency: int) -> float:
        captioner = TritonCaptioner(settings, "captioner")
        pending = iter(images)

        async def client() -> None:
            for data in pending:
                await captioner.caption(data, LANGUAGES)

        try:
            started = time.monotonic()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            return len(images) / (time.monotonic() - started)
        finally:
            await captioner.close()

    return {concurrency: asyncio.run(drive(concurrency)) for concurrency in concurrencies}


def triton_counts(metrics_url: str, model: str = "captioner") -> tuple[float, float]:
    """(inference requests, executions) Triton counted for ``model`` so far."""
    requests_total = executions = 0.0
    for line in requests.get(metrics_url, timeout=10).text.splitlines():
        if f'model="{model}"' not in line:
            continue
        if line.startswith("nv_inference_count{"):
            requests_total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("nv_inference_exec_count{"):
            executions += float(line.rsplit(" ", 1)[1])
    return requests_total, executions


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


def measure(ingest: str, headers: dict[str, str], images: list[bytes], config: InfraConfig, timeout_s: float) -> dict[str, float]:
    """Upload ``images`` concurrently and wait (on ``index.updated``) until each is indexed or settled otherwise.

    Returns the run's figures (throughput and latencies count the indexed images) and, under
    ``cpu_ms_per_image``, the CPU milliseconds each component spent per uploaded image.
    """
    kafka, metrics_url = config.kafka, config.triton.metrics_url
    cpu_before = cpu_by_component(config)
    before = triton_counts(metrics_url)
    consumer = _index_events_from_now(kafka)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda data: requests.post(f"{ingest}/v1/images", files={"file": ("i.png", data)}, headers=headers, timeout=60), images))
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
    after = triton_counts(metrics_url)
    cpu = cpu_ms_per_item(cpu_before, cpu_by_component(config), len(images))
    statuses = [requests.get(f"{ingest}/v1/images/{image_id}", headers=headers, timeout=30).json() for image_id in ids]
    statuses = [status for status in statuses if status["status"] == "indexed"]
    to_caption = [_seconds_between(s["received_at"], s["captioned_at"]) for s in statuses]
    to_index = [_seconds_between(s["received_at"], s["indexed_at"]) for s in statuses]
    executions = after[1] - before[1]
    return {
        "images": len(ids),
        "not_indexed": len(ids) - len(statuses),
        "upload_s": uploaded_s,
        "total_s": elapsed,
        "images_per_s": len(statuses) / elapsed,
        "caption_p50_s": statistics.median(to_caption),
        "caption_p95_s": statistics.quantiles(to_caption, n=20)[-1],
        "index_p50_s": statistics.median(to_index),
        "index_p95_s": statistics.quantiles(to_index, n=20)[-1],
        "triton_mean_batch": (after[0] - before[0]) / executions if executions else 0.0,
        "cpu_ms_per_image": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localinfra.bench``."""
    parser = argparse.ArgumentParser(prog="python -m localinfra.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=120, help="images per run, a multiple of 3 (default 120)")
    parser.add_argument("--batch-sizes", default="1,32", help="caption micro-batch sizes to compare (default 1,32)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one run to be indexed")
    parser.add_argument("--warmup", type=int, default=24, help="images pushed through, unmeasured, before the runs (default 24)")
    parser.add_argument("--concurrencies", default="1,8,32,64", help="requests in flight when driving the captioner alone (default 1,8,32,64)")
    args = parser.parse_args(argv)
    config = InfraConfig()
    headers = {"X-API-Key": local_api_key(config)}
    ingest = f"http://127.0.0.1:{IngestSettings().port}"
    started = []
    results: dict[int, dict[str, float]] = {}
    limit: dict[int, float] = {}
    limit_cpu: dict[str, float] = {}
    try:
        started = start_missing(config)
        seed = int.from_bytes(os.urandom(3), "big")  # fresh images: known ones would start no run
        if args.warmup:  # the first images pay for model loading and index creation: keep them out of the figures
            measure(ingest, headers, [data for _, data in scene_images(max(args.warmup // 3, 1), seed - 1)], config, args.timeout)
        alone = [data for _, data in scene_images(args.images // 3, seed - 2)]
        concurrencies = [int(n) for n in args.concurrencies.split(",")]
        cpu_before = cpu_by_component(config)
        limit = captioner_limit(config.triton, alone, concurrencies)
        limit_cpu = cpu_ms_per_item(cpu_before, cpu_by_component(config), len(alone) * len(concurrencies))
        print("captioner alone: " + ", ".join(f"{rate:.1f} images/s at {n} in flight" for n, rate in limit.items()), flush=True)
        for run, batch_size in enumerate(int(size) for size in args.batch_sizes.split(",")):
            caption = PipelineService(config, "caption", env={"CAPTIONING_CAPTION_BATCH_SIZE": str(batch_size)})
            caption.stop()
            caption.start()
            images = [data for _, data in scene_images(args.images // 3, seed + run * 1_000_003)]
            results[batch_size] = measure(ingest, headers, images, config, args.timeout)
            print(f"batch size {batch_size}: {results[batch_size]['images_per_s']:.1f} images/s", flush=True)
    finally:
        caption = PipelineService(config, "caption")
        caption.stop()
        if all(component.name != "caption" for component in started):
            caption.start()  # leave a caption service that was running with its own settings
        for component in reversed(started):
            component.stop()
    print_table(results, limit, limit_cpu)
    return 0


def print_table(results: dict[int, dict], limit: dict[int, float], limit_cpu: dict[str, float]) -> None:
    """The figures of each run, the CPU each component spent per image, and the ratios."""
    sizes = list(results)
    names = [name for name in results[sizes[0]] if name != "cpu_ms_per_image"]
    print("\n| figure | " + " | ".join(f"batch {size}" for size in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{results[size][name]:.3g}" for size in sizes) + " |")
    print("\n| CPU ms per image | captioner alone | " + " | ".join(f"batch {size}" for size in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for component in results[sizes[0]]["cpu_ms_per_image"]:
        alone = f"{limit_cpu[component]:.1f}" if component in limit_cpu else "-"
        print(f"| {component} | {alone} | " + " | ".join(f"{results[size]['cpu_ms_per_image'].get(component, 0.0):.1f}" for size in sizes) + " |")
    print("| all | " + f"{sum(limit_cpu.values()):.1f} | " + " | ".join(f"{sum(results[size]['cpu_ms_per_image'].values()):.1f}" for size in sizes) + " |")
    base = results[sizes[0]]
    for size in sizes[1:]:
        print(
            f"\nbatch {size} vs batch {sizes[0]}: throughput x{results[size]['images_per_s'] / base['images_per_s']:.2f}, "
            f"p50 upload-to-index x{results[size]['index_p50_s'] / base['index_p50_s']:.2f}, "
            f"Triton mean batch {results[size]['triton_mean_batch']:.1f} vs {base['triton_mean_batch']:.1f}"
        )
    best = max(limit, key=limit.get)
    for size in sizes:
        print(f"batch {size}: x{results[size]['images_per_s'] / limit[best]:.2f} of the captioner alone ({limit[best]:.1f} images/s at {best} in flight)")


if __name__ == "__main__":
    sys.exit(main())
