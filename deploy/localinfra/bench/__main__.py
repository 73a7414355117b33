"""``python -m localinfra.bench``: the pipeline side by side with its models alone and with the
loop a new user would write, in one run on one machine.

Starts what is not running, pushes warm-up images through, then measures:

1. **Models alone.** Triton's ``captioner`` driven as the caption service drives it (one
   request per image, English and Korean) at several numbers of requests in flight: the
   captioner's limit here. The same models without dynamic batching (a second Triton serving
   a copy of the repository whose configs have no ``dynamic_batching``), compared at equal
   p95 latency. The models the moderation and indexing services run in process
   (NudeNet at its best number of calls in flight, the caption text checks, the
   multilingual embedder), each alone; together
   with the captioner they give the models' limit. Triton's ``scene_captioner`` (the trained
   student) alone, and a plain ``transformers`` loop (``generate`` per image and language)
   on the same checkpoint.
2. **Pipeline, burst.** For each caption micro-batch size, the caption service restarted with
   it, a fresh set of generated images uploaded at once, measured until every image is
   announced on ``index.updated``: images/s, latency upload to caption and to index, Triton's
   mean batch.
3. **Pipeline, open loop.** Uploads at a fixed rate, 50 % and 100 % of the best burst rate:
   p50/p95/p99 upload to indexed.
4. **Scale-out.** 1, 2 and 4 caption workers in one consumer group, a burst each.

For every run it reads from ``/proc`` the CPU milliseconds each component (Kafka, MinIO,
Triton with its model processes, each service) spent per image. Prints the tables and
ratios, writes ``reports/bench.json`` and three plots (``reports/bench_*.png``); stops what
it started.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from localinfra.bench.models import (
    captioner_alone, captions_of, combined_limit, in_process_models, naive_transformers, scene_captioner_alone,
)
from localinfra.bench.pipeline_load import measure
from localinfra.bench.report import plot, write_json
from localinfra.bench.unbatched import unbatched_triton
from localinfra.cpu_time import cpu_by_component, cpu_ms_per_item
from localinfra.demo import scene_images
from localinfra.pipeline import PipelineService, local_api_key
from localinfra.registry import start_missing
from localinfra.scaling import scale
from localinfra.settings import InfraConfig
from services.ingest.settings import IngestSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
CHECKPOINT = REPO_ROOT / "models" / "student"
EXPORTED = REPO_ROOT / "model_repository" / "scene_captioner" / "1" / "student"
RESTART_WARMUP_IMAGES = 6


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localinfra.bench``."""
    parser = argparse.ArgumentParser(prog="python -m localinfra.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=120, help="images per burst and for the models alone, a multiple of 3 (default 120)")
    parser.add_argument("--batch-sizes", default="1,32", help="caption micro-batch sizes to compare (default 1,32)")
    parser.add_argument("--concurrencies", default="1,8,32,64", help="requests in flight when driving the captioner alone (default 1,8,32,64)")
    parser.add_argument("--unbatched-concurrencies", default="1,4,16", help="requests in flight for the unbatched captioner (default 1,4,16)")
    parser.add_argument("--nudenet-in-flight", default="1,2,4", help="NudeNet calls in flight, as moderation's thread pool makes them (default 1,2,4)")
    parser.add_argument("--naive-images", type=int, default=24, help="images through the plain transformers loop (default 24)")
    parser.add_argument("--open-loop-seconds", type=float, default=15, help="how long each fixed-rate run uploads (default 15)")
    parser.add_argument("--workers", default="1,2,4", help="caption workers of the scale-out runs (default 1,2,4)")
    parser.add_argument("--warmup", type=int, default=24, help="images pushed through, unmeasured, before the runs (default 24)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one run to be indexed")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports", help="where bench.json and the plots go (default reports/)")
    args = parser.parse_args(argv)
    config = InfraConfig()
    headers = {"X-API-Key": local_api_key(config)}
    ingest = f"http://127.0.0.1:{IngestSettings().port}"
    seed = int.from_bytes(os.urandom(3), "big")  # fresh images: known ones would start no run
    fresh = iter(range(1, 1000))

    def images(count: int) -> list[bytes]:
        return [data for _, data in scene_images(max(count // 3, 1), seed + next(fresh) * 1_000_003)]

    def burst(count: int) -> dict:
        return measure(ingest, headers, images(count), config, args.timeout)

    def restart_caption(env: dict[str, str]) -> None:
        """The caption service started again with ``env``, then fed a few images: the figures must
        not include its joining the consumer group."""
        caption = PipelineService(config, "caption", env=env)
        caption.stop()
        caption.start()
        burst(RESTART_WARMUP_IMAGES)

    report: dict = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "python": platform.python_version()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    started = []
    try:
        started = start_missing(config)
        if args.warmup:  # the first images pay for model loading and index creation: keep them out of the figures
            burst(args.warmup)

        alone = images(args.images)
        concurrencies = _numbers(args.concurrencies)
        cpu_before = cpu_by_component(config)
        report["captioner_alone"] = captioner_alone(config.triton, alone, concurrencies)
        report["captioner_alone_cpu_ms_per_image"] = cpu_ms_per_item(cpu_before, cpu_by_component(config), len(alone) * len(concurrencies))
        best = max(report["captioner_alone"], key=lambda n: report["captioner_alone"][n]["images_per_s"])
        print("captioner alone: " + ", ".join(f"{r['images_per_s']:.1f} images/s at {n}" for n, r in report["captioner_alone"].items()), flush=True)
        with unbatched_triton(config) as unbatched:
            report["captioner_unbatched"] = captioner_alone(unbatched, alone, _numbers(args.unbatched_concurrencies))
        print("captioner unbatched: " + ", ".join(f"{r['images_per_s']:.1f} images/s at {n}" for n, r in report["captioner_unbatched"].items()), flush=True)
        report["in_process_models"] = in_process_models(alone, captions_of(config.triton, alone), _numbers(args.nudenet_in_flight))
        report["models_limit_images_per_s"] = combined_limit(
            [report["captioner_alone"][best]["images_per_s"], *(row["images_per_s"] for row in report["in_process_models"].values())]
        )
        print(f"models' limit: {report['models_limit_images_per_s']:.1f} images/s", flush=True)
        report["scene_captioner_alone"] = scene_captioner_alone(config.triton, alone, best)
        report["naive_transformers"] = naive_transformers(CHECKPOINT, EXPORTED, alone[: args.naive_images], os.cpu_count() or 1)
        print(f"scene_captioner alone: {report['scene_captioner_alone']['images_per_s']:.1f} images/s; "
              f"plain transformers loop: {report['naive_transformers']['images_per_s']:.2f} images/s", flush=True)

        report["pipeline_burst"] = {}
        for batch_size in _numbers(args.batch_sizes):
            restart_caption({"CAPTIONING_CAPTION_BATCH_SIZE": str(batch_size)})
            report["pipeline_burst"][f"batch {batch_size}"] = burst(args.images)
            print(f"pipeline, caption batch {batch_size}: {report['pipeline_burst'][f'batch {batch_size}']['images_per_s']:.1f} images/s", flush=True)
        restart_caption({})  # the configured batch size from here on

        maximum = max(run["images_per_s"] for run in report["pipeline_burst"].values())
        report["pipeline_open_loop"] = {}
        for share in (0.5, 1.0):
            rate = maximum * share
            run = measure(ingest, headers, images(round(rate * args.open_loop_seconds)), config, args.timeout, rate=rate)
            report["pipeline_open_loop"][f"{share:.0%}"] = run
            print(f"open loop at {rate:.1f} images/s: p50 {run['index_p50_s']:.2f} s, p95 {run['index_p95_s']:.2f} s, p99 {run['index_p99_s']:.2f} s", flush=True)

        report["scale_out"] = {}
        try:
            for workers in _numbers(args.workers):
                scale(config, {"caption": workers}, log=lambda line: None)
                burst(RESTART_WARMUP_IMAGES)  # the group has rebalanced before the figures start
                report["scale_out"][f"{workers} caption workers"] = burst(args.images)
                print(f"{workers} caption workers: {report['scale_out'][f'{workers} caption workers']['images_per_s']:.1f} images/s", flush=True)
        finally:
            scale(config, {"caption": 1}, log=lambda line: None)
    finally:
        if all(component.name != "caption" for component in started):
            PipelineService(config, "caption").start()  # leave a caption service that was running as it was
        for component in reversed(started):
            component.stop()

    report["ratios"] = ratios(report)
    print_tables(report)
    write_json(args.out / "bench.json", report)
    for path in [args.out / "bench.json", *plot(args.out, report)]:
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


def ratios(report: dict) -> dict[str, float]:
    """The acceptance ratios: each figure against what it is compared with in the same run."""
    limit = max(row["images_per_s"] for row in report["captioner_alone"].values())
    pipeline = max(run["images_per_s"] for run in report["pipeline_burst"].values())
    bursts = list(report["pipeline_burst"].values())
    half = report["pipeline_open_loop"]["50%"]
    return {
        "dynamic_batching_at_equal_p95": at_equal_p95(report["captioner_alone"], report["captioner_unbatched"]),
        "pipeline_vs_models_limit": pipeline / report["models_limit_images_per_s"],
        "pipeline_vs_captioner_alone": pipeline / limit,
        "batched_vs_unbatched_pipeline": bursts[-1]["images_per_s"] / bursts[0]["images_per_s"],
        "scene_captioner_vs_plain_transformers": report["scene_captioner_alone"]["images_per_s"] / report["naive_transformers"]["images_per_s"],
        "captioner_vs_plain_transformers": limit / report["naive_transformers"]["images_per_s"],
        "open_loop_50_p99_over_p50": half["index_p99_s"] / half["index_p50_s"],
    }


def at_equal_p95(batched: dict, unbatched: dict) -> float:
    """The batched captioner's best images/s over the unbatched one's best at a p95 no longer than it
    (0 when every unbatched run had a longer p95: no comparable point)."""
    best = max(batched.values(), key=lambda row: row["images_per_s"])
    comparable = [row["images_per_s"] for row in unbatched.values() if row["p95_s"] <= best["p95_s"]]
    return best["images_per_s"] / max(comparable) if comparable else 0.0


def print_tables(report: dict) -> None:
    """The runs as Markdown tables, then the ratios."""
    print("\n| captioner alone, in flight | images/s | p50 s | p95 s | p99 s |\n|---|---|---|---|---|")
    for n, row in report["captioner_alone"].items():
        print(f"| {n} | {row['images_per_s']:.1f} | {row['p50_s']:.3f} | {row['p95_s']:.3f} | {row['p99_s']:.3f} |")
    for n, row in report["captioner_unbatched"].items():
        print(f"| {n}, unbatched | {row['images_per_s']:.1f} | {row['p50_s']:.3f} | {row['p95_s']:.3f} | {row['p99_s']:.3f} |")
    others = report["in_process_models"] | {name: report[name] for name in ("scene_captioner_alone", "naive_transformers")}
    for name, row in others.items():
        label = name.replace("_", " ") + (f", {row['in_flight']} in flight" if "in_flight" in row else "")
        print(f"| {label} | {row['images_per_s']:.2f} | {row['p50_s']:.3f} | {row['p95_s']:.3f} | {row['p99_s']:.3f} |")
    print(f"| every model once per image (models' limit) | {report['models_limit_images_per_s']:.2f} | | | |")
    runs = report["pipeline_burst"] | {f"open loop {k}": v for k, v in report["pipeline_open_loop"].items()} | report["scale_out"]
    figures = [name for name in next(iter(runs.values())) if name not in ("cpu_ms_per_image", "index_latencies_s")]
    print("\n| pipeline | " + " | ".join(runs) + " |\n|---|" + "---|" * len(runs))
    for figure in figures:
        print(f"| {figure} | " + " | ".join(f"{run[figure]:.3g}" for run in runs.values()) + " |")
    columns = {"captioner alone": report["captioner_alone_cpu_ms_per_image"]} | {name: run["cpu_ms_per_image"] for name, run in runs.items()}
    components = list(next(iter(report["pipeline_burst"].values()))["cpu_ms_per_image"])
    print("\n| CPU ms per image | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for component in [*components, "all"]:
        cells = [sum(cpu.values()) if component == "all" else cpu.get(component, 0.0) for cpu in columns.values()]
        print(f"| {component} | " + " | ".join(f"{cell:.1f}" for cell in cells) + " |")
    print()
    for name, value in report["ratios"].items():
        print(f"{name.replace('_', ' ')}: x{value:.2f}")


if __name__ == "__main__":
    sys.exit(main())
