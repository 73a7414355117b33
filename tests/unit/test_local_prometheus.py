"""The local Prometheus' configuration: every service replica and Triton, labelled as the chart labels them, with the chart's rules."""

from __future__ import annotations

import json
import subprocess

import pytest
from prometheus_client import generate_latest

from captioning_common.metrics import PipelineMetrics
from localinfra.prometheus import RULES_DIR, Prometheus, binary, file_sd, local_targets
from localinfra.scaling import remember
from localinfra.settings import InfraConfig, LocalInfraSettings
from tests.observability import rules


@pytest.fixture()
def config(tmp_path) -> InfraConfig:
    return InfraConfig(local=LocalInfraSettings(state_dir=tmp_path, prometheus_port=19999))


def test_every_service_the_console_and_triton_are_targets_with_the_pipeline_label(config: InfraConfig) -> None:
    remember(config, "caption", 3)  # `scale caption=3`
    targets = local_targets(config)
    assert targets["caption"] == [f"http://127.0.0.1:{port}/metrics" for port in (9401, 9501, 9601)]
    assert targets["ingest"] == ["http://127.0.0.1:8080/metrics"] and targets["triton"] == [config.triton.metrics_url]
    groups = file_sd(targets)
    assert targets["console"] == ["http://127.0.0.1:8082/metrics"]
    assert len(groups) == 3 + 1 + 1 + 1 + 1 + 1
    assert all(group["labels"]["pipeline"] == "captioning" and group["labels"]["__metrics_path__"] == "/metrics" for group in groups)
    assert {group["labels"]["job"] for group in groups} == {"ingest", "caption", "moderation", "indexing", "console", "triton"}


def test_promtool_accepts_the_generated_configuration_with_the_chart_rules(config: InfraConfig) -> None:
    server = Prometheus(config)
    server.prepare()
    written = json.loads((server.home / "prometheus.yml").read_text())
    assert written["rule_files"] == [str(RULES_DIR / "*.rules.yml")]
    assert written["global"]["scrape_interval"] == "2s"
    result = subprocess.run([str(binary("promtool")), "check", "config", str(server.home / "prometheus.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout, result.stdout
    command, _ = server.command()
    assert "--web.listen-address=127.0.0.1:19999" in command


def test_services_export_their_process_metrics_with_their_service_label() -> None:
    """process_start_time_seconds tells a restart (the crash-loop alert) without kube-state-metrics."""
    body = generate_latest(PipelineMetrics("moderation").registry).decode()
    assert 'process_start_time_seconds{service="moderation"}' in body
    assert 'process_resident_memory_bytes{service="moderation"}' in body
    assert 'python_info{implementation="CPython"' in body and 'service="moderation"' in body
