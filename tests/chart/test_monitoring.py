"""The ServiceMonitor, the PrometheusRule built from files/prometheus and the dashboards of files/dashboards."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.chart.conftest import CHART, Chart, Manifests

RULE_FILES = sorted((CHART / "files" / "prometheus").glob("*.rules.yml"))
DASHBOARDS = sorted((CHART / "files" / "dashboards").glob("*.json"))
COMPONENTS = ("ingest", "caption", "moderation", "indexing", "console", "triton")


def test_the_rule_and_dashboard_files_exist() -> None:
    assert RULE_FILES and DASHBOARDS


def test_service_monitor_scrapes_every_metrics_port_and_labels_the_pipeline(defaults: Manifests) -> None:
    monitor = defaults.get("ServiceMonitor")["spec"]
    endpoints = {endpoint["port"]: endpoint for endpoint in monitor["endpoints"]}
    for endpoint in endpoints.values():
        assert endpoint["honorLabels"] is True and endpoint["path"] == "/metrics"
        assert {"action": "replace", "targetLabel": "pipeline", "replacement": "captioning"} in endpoint["relabelings"]
    (expression,) = monitor["selector"]["matchExpressions"]
    assert sorted(expression["values"]) == sorted(COMPONENTS)
    for component in COMPONENTS:
        service = defaults.get("Service", component)
        assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        scraped = [port for port in service["spec"]["ports"] if port["name"] in endpoints]
        assert len(scraped) == 1, component  # one scrape per pod, on the port that serves /metrics
        (container,) = defaults.get("Deployment", component)["spec"]["template"]["spec"]["containers"]
        target = next(port for port in container["ports"] if port["name"] == scraped[0]["targetPort"])
        if component == "triton":
            assert target["containerPort"] == 8002
        else:
            assert str(target["containerPort"]) == defaults.get("ConfigMap")["data"][f"CAPTIONING_{component.upper()}_PORT"]


def test_without_the_console_the_service_monitor_selects_no_console(chart: Chart) -> None:
    monitor = chart.render(None, {"console": {"enabled": False}}).get("ServiceMonitor")["spec"]
    (expression,) = monitor["selector"]["matchExpressions"]
    assert sorted(expression["values"]) == sorted(set(COMPONENTS) - {"console"})


def test_prometheus_rule_carries_every_group_of_every_rule_file(defaults: Manifests) -> None:
    groups = [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]
    assert groups
    assert defaults.get("PrometheusRule")["spec"]["groups"] == groups


def test_a_grafana_configmap_per_dashboard(defaults: Manifests) -> None:
    maps = [doc for doc in defaults.of_kind("ConfigMap") if doc["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert sorted(name for doc in maps for name in doc["data"]) == [path.name for path in DASHBOARDS]
    for doc in maps:
        ((name, content),) = doc["data"].items()
        assert json.loads(content) == json.loads((CHART / "files" / "dashboards" / name).read_text())


def test_labels_of_the_operator_objects_and_dashboards_are_configurable(chart: Chart, matrix: dict[str, Manifests]) -> None:
    release = {"release": "kube-prometheus-stack"}
    assert matrix["existing-secret"].get("ServiceMonitor")["metadata"]["labels"].items() >= release.items()
    assert matrix["existing-secret"].get("PrometheusRule")["metadata"]["labels"].items() >= release.items()
    assert "release" not in matrix["defaults"].get("ServiceMonitor")["metadata"]["labels"]
    custom = chart.render(None, {"metrics": {"dashboards": {"label": "grafana.example/dashboard", "labelValue": "yes", "annotations": {"grafana_folder": "Pipeline"}}}})
    maps = [doc for doc in custom.of_kind("ConfigMap") if doc["metadata"]["labels"].get("grafana.example/dashboard") == "yes"]
    assert len(maps) == len(DASHBOARDS) and all(doc["metadata"]["annotations"] == {"grafana_folder": "Pipeline"} for doc in maps)


def test_metrics_off_renders_no_monitoring_object(matrix: dict[str, Manifests]) -> None:
    manifests = matrix["metrics-off"]
    assert not manifests.of_kind("ServiceMonitor") and not manifests.of_kind("PrometheusRule")
    assert not [doc for doc in manifests.of_kind("ConfigMap") if "grafana_dashboard" in doc["metadata"]["labels"]]


@pytest.mark.parametrize(("glob", "switch"), [("files/prometheus/*.rules.yml", "prometheusRule"), ("files/dashboards/*.json", "dashboards")])
def test_an_empty_glob_fails_the_rendering(chart: Chart, tmp_path, glob: str, switch: str) -> None:
    """A chart packaged without its rule files or dashboards is refused rather than rendered without them."""
    copy = tmp_path / "captioning"
    shutil.copytree(CHART, copy)
    for path in copy.glob(glob):
        path.unlink()
    result = subprocess.run([str(chart.helm), "template", "demo", str(copy)], capture_output=True, text=True)
    assert result.returncode != 0 and f"metrics.{switch}.enabled" in result.stderr


def test_runbook_links_become_absolute_with_a_base_url(chart: Chart, defaults: Manifests) -> None:
    relative = [rule["annotations"]["runbook_url"] for group in defaults.get("PrometheusRule")["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
    assert relative and all(url.startswith("docs/runbooks.md#") for url in relative)
    based = chart.render(None, {"metrics": {"prometheusRule": {"runbookBaseUrl": "https://git.example.com/captioning/blob/main/"}}})
    absolute = [rule["annotations"]["runbook_url"] for group in based.get("PrometheusRule")["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
    assert absolute == [f"https://git.example.com/captioning/blob/main/{url}" for url in relative]
