"""The benchmark's ratios, tables and plots from a report of known figures (no servers)."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from localinfra.bench.__main__ import at_equal_p95, print_tables, ratios
from localinfra.bench.models import combined_limit, latency_figures
from localinfra.bench.report import plot, write_json
from localinfra.bench.unbatched import unbatched_copy
from tests.conftest import REPO_ROOT


def _run(images_per_s: float, p50: float, p99: float, cpu: dict[str, float]) -> dict:
    return {"images": 120, "images_per_s": images_per_s, "offered_per_s": 0.0, "index_p50_s": p50, "index_p95_s": p99 * 0.9,
            "index_p99_s": p99, "cpu_ms_per_image": cpu, "index_latencies_s": [p50 * 0.5, p50, p99]}


REPORT = {
    "captioner_alone": {1: latency_figures(10, 1.0, [0.1] * 10), 32: latency_figures(80, 1.0, [0.4] * 80)},
    "captioner_unbatched": {1: latency_figures(15, 1.0, [0.05] * 15), 16: latency_figures(18, 1.0, [0.9] * 18)},
    "captioner_alone_cpu_ms_per_image": {"triton": 40.0, "kafka": 1.0},
    "in_process_models": {"nudenet": latency_figures(40, 1.0, [0.025] * 40)},
    "models_limit_images_per_s": 32.0,
    "scene_captioner_alone": latency_figures(100, 1.0, [0.2] * 100),
    "naive_transformers": latency_figures(5, 1.0, [0.2] * 5),
    "pipeline_burst": {"batch 1": _run(8.0, 4.0, 9.0, {"triton": 100.0, "kafka": 30.0}), "batch 32": _run(16.0, 2.0, 3.0, {"triton": 35.0, "kafka": 8.0})},
    "pipeline_open_loop": {"50%": _run(8.0, 0.8, 1.2, {"triton": 30.0}), "100%": _run(15.0, 1.5, 4.5, {"triton": 33.0})},
    "scale_out": {"1 caption workers": _run(15.0, 2.0, 3.0, {"triton": 35.0})},
}


def test_each_ratio_compares_the_figures_of_the_same_run() -> None:
    assert ratios(REPORT) == pytest.approx({
        "dynamic_batching_at_equal_p95": 80.0 / 15.0,  # the unbatched run at 16 in flight has a longer p95 (0.9 s > 0.4 s)
        "pipeline_vs_models_limit": 0.5,
        "pipeline_vs_captioner_alone": 16.0 / 80.0,
        "batched_vs_unbatched_pipeline": 2.0,
        "scene_captioner_vs_plain_transformers": 20.0,
        "captioner_vs_plain_transformers": 16.0,
        "open_loop_50_p99_over_p50": 1.5,
    })


def test_the_models_limit_adds_the_time_each_model_takes_per_image() -> None:
    assert combined_limit([80.0, 40.0, 160.0]) == pytest.approx(1 / (1 / 80 + 1 / 40 + 1 / 160))
    assert combined_limit([50.0, 50.0]) == pytest.approx(25.0)


def test_batching_is_compared_at_a_p95_no_longer_than_the_batched_one() -> None:
    batched = {64: {"images_per_s": 80.0, "p95_s": 1.0}}
    assert at_equal_p95(batched, {1: {"images_per_s": 18.0, "p95_s": 0.08}, 16: {"images_per_s": 20.0, "p95_s": 0.95}}) == 4.0
    assert at_equal_p95(batched, {16: {"images_per_s": 20.0, "p95_s": 1.5}}) == 0.0  # nothing comparable


def test_latency_figures_take_the_percentiles_of_the_requests() -> None:
    figures = latency_figures(100, 4.0, [i / 100 for i in range(1, 101)])
    assert figures["images_per_s"] == 25.0
    assert (round(figures["p50_s"], 3), round(figures["p95_s"], 3), round(figures["p99_s"], 3)) == (0.505, 0.951, 0.99)


def test_the_tables_json_and_three_plots_are_written(tmp_path, capsys) -> None:
    report = REPORT | {"ratios": ratios(REPORT)}
    print_tables(report)
    printed = capsys.readouterr().out
    assert "| all | 41.0 | 130.0 | 43.0 | 30.0 | 33.0 | 35.0 |" in printed and "pipeline vs captioner alone: x0.20" in printed
    write_json(tmp_path / "bench.json", report)
    assert json.loads((tmp_path / "bench.json").read_text())["ratios"]["batched_vs_unbatched_pipeline"] == 2.0
    written = plot(tmp_path, report)
    assert [path.name for path in written] == ["bench_throughput.png", "bench_latency.png", "bench_cpu.png"]
    assert all(Image.open(path).size[0] >= 700 for path in written)


def test_the_unbatched_copy_drops_dynamic_batching_and_leaves_the_repository_alone(tmp_path) -> None:
    source = tmp_path / "repository"
    for config in (REPO_ROOT / "model_repository").glob("*/config.pbtxt"):
        (source / config.parent.name / "1").mkdir(parents=True)
        shutil.copy2(config, source / config.parent.name / "config.pbtxt")
        (source / config.parent.name / "1" / "model.onnx").write_bytes(b"weights")
    originals = {path: path.read_text() for path in source.glob("*/config.pbtxt")}

    changed = unbatched_copy(source, tmp_path / "unbatched")

    assert changed == sorted(path.parent.name for path in originals) and "captioner" in changed
    for path, text in originals.items():
        copy = (tmp_path / "unbatched" / path.relative_to(source)).read_text()
        assert "dynamic_batching" in text and "dynamic_batching" not in copy and "max_batch_size" in copy
        assert path.read_text() == text  # the configs are hard links no more: the originals kept their batching
    assert (tmp_path / "unbatched" / "captioner" / "1" / "model.onnx").read_bytes() == b"weights"
