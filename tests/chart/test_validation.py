"""helm lint --strict, the rendering matrix under kubeconform -strict, and values the chart must refuse."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from localinfra import chart_tools
from tests.chart.conftest import MATRIX, Chart, Manifests


@pytest.mark.parametrize("case", MATRIX)
def test_helm_lint_strict(chart: Chart, case: str) -> None:
    result = chart.run("lint", MATRIX[case])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def kubeconform(text: str, kubernetes_version: str) -> dict:
    """kubeconform's report on one YAML stream."""
    result = subprocess.run(chart_tools.kubeconform_command(kubernetes_version), input=text, capture_output=True, text=True)
    return json.loads(result.stdout) | {"returncode": result.returncode}


@pytest.fixture(scope="module")
def validations(chart: Chart, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """kubeconform's report on every case of the matrix, per Kubernetes version (one run each)."""
    folder = tmp_path_factory.mktemp("rendered")
    files = []
    for case, values in MATRIX.items():
        files.append(folder / f"{case}.yaml")
        files[-1].write_text(chart.template_text(values))
    reports = {}
    for version in chart_tools.KUBERNETES_VERSIONS:
        result = subprocess.run(chart_tools.kubeconform_command(version, files), capture_output=True, text=True)
        reports[version] = json.loads(result.stdout)
    return reports


@pytest.mark.parametrize("kubernetes_version", chart_tools.KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", MATRIX)
def test_every_rendered_object_passes_strict_schema_validation(
    validations: dict[str, dict], matrix: dict[str, Manifests], case: str, kubernetes_version: str
) -> None:
    resources = [item for item in validations[kubernetes_version]["resources"] if item["filename"].endswith(f"/{case}.yaml")]
    problems = [f"{item['kind']} {item['name']}: {item['msg']}" for item in resources if item["status"] != "statusValid"]
    assert not problems, problems
    assert sorted((item["kind"], item["name"]) for item in resources) == sorted((doc["kind"], doc["metadata"]["name"]) for doc in matrix[case])


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": 80, "portName": "a"}]}}, id="unknown-field"),
        pytest.param({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
                      "spec": {"scaleTargetRef": {"name": "d"}, "triggers": [{"type": "cpu", "metadata": {}}], "maxReplicas": 3}}, id="unknown-crd-field"),
        pytest.param({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"},
                      "spec": {"selector": {}, "endpoints": [{"port": "http", "honorLabels": "yes"}]}}, id="wrong-type-in-crd"),
        pytest.param({"apiVersion": "example.com/v1", "kind": "Unknown", "metadata": {"name": "x"}}, id="kind-without-schema"),
    ],
)
def test_the_validation_is_strict(chart: Chart, document: dict) -> None:
    """The controls: kubeconform refuses what the API server's strict field validation refuses, CRDs included."""
    report = kubeconform(yaml.safe_dump(document), chart_tools.KUBERNETES_VERSIONS[-1])
    assert report["returncode"] != 0 and report["summary"]["valid"] == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"caption": {"autoscaling": {"maxReplicas": 13}}}, "caption.autoscaling.maxReplicas (13) is above the 12 partitions of images.uploaded", id="replicas-over-partitions"),
        pytest.param({"kafka": {"topics": {"partitions": 24, "partitionsByTopic": {"captions.generated": 6}}}, "moderation": {"autoscaling": {"maxReplicas": 8}}},
                     "moderation.autoscaling.maxReplicas (8) is above the 6 partitions of captions.generated", id="replicas-over-topic-partitions"),
        pytest.param({"ingest": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}}, "ingest.autoscaling.minReplicas (5) is above maxReplicas (3)", id="min-over-max"),
        pytest.param({"kafka": {"saslMechanism": "GSSAPI"}}, "/kafka/saslMechanism", id="schema-sasl-mechanism"),
        pytest.param({"caption": {"config": {"batchSize": 0}}}, "/caption/config/batchSize", id="schema-minimum"),
        pytest.param({"moderation": {"config": {"nudityRejectScore": 1.5}}}, "/moderation/config/nudityRejectScore", id="schema-score"),
        pytest.param({"indexing": {"config": {"writerLeaseTtl": 30}}}, "additional properties 'writerLeaseTtl' not allowed", id="schema-unknown-setting"),
        pytest.param({"kafka": {"topics": {"partitionsByTopic": {"images.upload": 4}}}}, "invalid propertyName 'images.upload'", id="schema-unknown-topic"),
        pytest.param({"kafka": {"bootstrapServers": "kafka"}}, "/kafka/bootstrapServers", id="schema-broker-without-port"),
        pytest.param({"image": {"digest": "latest"}}, "/image/digest", id="schema-digest"),
        pytest.param({"tritonn": {}}, "additional properties 'tritonn' not allowed", id="schema-unknown-value"),
    ],
)
def test_bad_values_are_refused(chart: Chart, overrides: dict, message: str) -> None:
    result = chart.run("template", None, overrides)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_more_partitions_allow_more_replicas(chart: Chart) -> None:
    manifests = chart.render(None, {"kafka": {"topics": {"partitionsByTopic": {"images.uploaded": 24}}}, "caption": {"autoscaling": {"maxReplicas": 24}}})
    assert manifests.get("ScaledObject", "caption")["spec"]["maxReplicaCount"] == 24
