"""``reports/bench.json`` and the benchmark's plots (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: Path, report: dict) -> None:
    """The whole report, latencies included, as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def plot(directory: Path, report: dict) -> list[Path]:
    """Throughput against concurrency, the open-loop latency distributions and the CPU per
    component; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    directory.mkdir(parents=True, exist_ok=True)
    written = []

    figure, axes = pyplot.subplots(figsize=(7, 4.2))
    alone = report["captioner_alone"]
    axes.plot([int(n) for n in alone], [row["images_per_s"] for row in alone.values()], marker="o", label="captioner alone (Triton)")
    unbatched = report["captioner_unbatched"]
    axes.plot([int(n) for n in unbatched], [row["images_per_s"] for row in unbatched.values()], marker="s", label="captioner alone, no dynamic batching")
    for label, run in report["pipeline_burst"].items():
        axes.axhline(run["images_per_s"], linestyle="--", color="grey" if label != max(report["pipeline_burst"]) else "black",
                     label=f"pipeline, caption {label}")
    axes.axhline(report["models_limit_images_per_s"], linestyle=":", color="tab:red", label="every model once per image (models' limit)")
    axes.set_xscale("log", base=2)
    ticks = sorted({int(n) for n in [*alone, *unbatched]})
    axes.set_xticks(ticks, [str(n) for n in ticks])
    axes.set_xlabel("requests in flight")
    axes.set_ylabel("images/s (English and Korean)")
    axes.set_title("Throughput against concurrency")
    axes.legend()
    written.append(_save(figure, directory / "bench_throughput.png"))

    figure, axes = pyplot.subplots(figsize=(7, 4.2))
    for label, run in report["pipeline_open_loop"].items():
        latencies = run["index_latencies_s"]
        axes.plot(latencies, [(i + 1) / len(latencies) for i in range(len(latencies))],
                  label=f"{label} of the maximum ({run['offered_per_s']:.1f} images/s): p50 {run['index_p50_s']:.2f} s, p99 {run['index_p99_s']:.2f} s")
    axes.set_xlabel("seconds, upload to indexed")
    axes.set_ylabel("share of images")
    axes.set_title("Latency at a fixed upload rate (open loop)")
    axes.legend(loc="lower right")
    written.append(_save(figure, directory / "bench_latency.png"))

    figure, axes = pyplot.subplots(figsize=(7, 4.2))
    columns = {"captioner alone": report["captioner_alone_cpu_ms_per_image"]} | {
        f"pipeline, caption {label}": run["cpu_ms_per_image"] for label, run in report["pipeline_burst"].items()
    }
    components = sorted({name for cpu in columns.values() for name in cpu}, key=lambda name: -max(cpu.get(name, 0) for cpu in columns.values()))
    bottoms = [0.0] * len(columns)
    for component in components:
        heights = [cpu.get(component, 0.0) for cpu in columns.values()]
        axes.bar(list(columns), heights, bottom=bottoms, label=component)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    axes.set_ylabel("CPU ms per image")
    axes.set_title("Where the CPU goes, per component")
    axes.legend(fontsize="small")
    written.append(_save(figure, directory / "bench_cpu.png"))
    return written


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
