"""``python -m localinfra.bench``: pipeline throughput with and without micro-batching, side by side.

Starts the servers and the services (whatever is not running yet), then for each
caption batch size restarts the caption service with it, uploads a fresh set of
generated images through the API, and measures until every image is indexed:
end-to-end throughput, per-image latency from upload to caption and to index, and
the mean batch size Triton executed (from Triton's own counters). Prints one table
and the ratios against the first batch size; stops what it started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests

from captioning_common.settings import TritonSettings
from localinfra.demo import demo_images
from localinfra.pipeline import PipelineService, local_api_key
from localinfra.registry import components
from localinfra.settings import InfraConfig
from services.ingest.settings import IngestSettings


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


def measure(ingest: str, headers: dict[str, str], images: list[bytes], metrics_url: str, timeout_s: float) -> dict[str, float]:
    """Upload ``images`` concurrently and wait until all are indexed; returns the figures of the run."""
    before = triton_counts(metrics_url)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda data: requests.post(f"{ingest}/v1/images", files={"file": ("i.png", data)}, headers=headers, timeout=60), images))
    ids = [response.json()["id"] for response in responses if response.status_code == 202]
    if len(ids) != len(images):
        raise RuntimeError(f"{len(images) - len(ids)} uploads were not accepted as new images")
    uploaded_s = time.monotonic() - started
    statuses: dict[str, dict] = {}
    deadline = started + timeout_s
    while len(statuses) < len(ids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ids) - len(statuses)} images not indexed after {timeout_s:.0f}s")
        for image_id in [i for i in ids if i not in statuses]:
            status = requests.get(f"{ingest}/v1/images/{image_id}", headers=headers, timeout=30).json()
            if status["status"] in ("indexed", "failed") or status["verdict"] in ("review", "reject"):
                statuses[image_id] = status
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    after = triton_counts(metrics_url)
    indexed = [s for s in statuses.values() if s["status"] == "indexed"]
    to_caption = [_seconds_between(s["received_at"], s["captioned_at"]) for s in indexed]
    to_index = [_seconds_between(s["received_at"], s["indexed_at"]) for s in indexed]
    executions = after[1] - before[1]
    return {
        "images": len(ids),
        "indexed": len(indexed),
        "upload_s": uploaded_s,
        "total_s": elapsed,
        "images_per_s": len(indexed) / elapsed,
        "caption_p50_s": statistics.median(to_caption),
        "caption_p95_s": statistics.quantiles(to_caption, n=20)[-1],
        "index_p50_s": statistics.median(to_index),
        "index_p95_s": statistics.quantiles(to_index, n=20)[-1],
        "triton_mean_batch": (after[0] - before[0]) / executions if executions else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localinfra.bench``."""
    parser = argparse.ArgumentParser(prog="python -m localinfra.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=120, help="images per run, a multiple of 3 (default 120)")
    parser.add_argument("--batch-sizes", default="1,32", help="caption micro-batch sizes to compare (default 1,32)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one run to be indexed")
    args = parser.parse_args(argv)
    config = InfraConfig()
    headers = {"X-API-Key": local_api_key(config)}
    ingest = f"http://127.0.0.1:{IngestSettings().port}"
    metrics_url = TritonSettings().metrics_url
    started = []
    results: dict[int, dict[str, float]] = {}
    try:
        for component in components(config):
            if component.process.pid() is None and not component.healthy():
                if not component.installed():
                    component.install()
                started.append(component)
            component.start()
            component.provision()
        seed = int.from_bytes(os.urandom(3), "big")  # fresh images: known ones would start no run
        for run, batch_size in enumerate(int(size) for size in args.batch_sizes.split(",")):
            caption = PipelineService(config, "caption", env={"CAPTIONING_CAPTION_BATCH_SIZE": str(batch_size)})
            caption.stop()
            caption.start()
            images = [data for _, data in demo_images(args.images // 3, seed + run * 1_000_003)]
            results[batch_size] = measure(ingest, headers, images, metrics_url, args.timeout)
            print(f"batch size {batch_size}: {results[batch_size]['images_per_s']:.1f} images/s", flush=True)
    finally:
        caption = PipelineService(config, "caption")
        caption.stop()
        if all(component.name != "caption" for component in started):
            caption.start()  # leave a caption service that was running with its own settings
        for component in reversed(started):
            component.stop()
    print_table(results)
    return 0


def print_table(results: dict[int, dict[str, float]]) -> None:
    """The figures of each run and the ratios against the first."""
    names = list(next(iter(results.values())))
    sizes = list(results)
    print("\n| figure | " + " | ".join(f"batch {size}" for size in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{results[size][name]:.3g}" for size in sizes) + " |")
    base = results[sizes[0]]
    for size in sizes[1:]:
        print(
            f"\nbatch {size} vs batch {sizes[0]}: throughput x{results[size]['images_per_s'] / base['images_per_s']:.2f}, "
            f"p50 upload-to-index x{results[size]['index_p50_s'] / base['index_p50_s']:.2f}, "
            f"Triton mean batch {results[size]['triton_mean_batch']:.1f} vs {base['triton_mean_batch']:.1f}"
        )


if __name__ == "__main__":
    sys.exit(main())
