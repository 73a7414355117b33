"""The chart against a real Kubernetes API server: strict server-side validation and ``helm install --wait``.

A local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler; kwok as the
kubelet of two fake nodes, see ``localinfra.kube``) with the KEDA and prometheus-operator CRDs of
the pinned modules. Kafka and S3 are fake endpoints: nothing runs in the pods, kwok only reports
them Running and Ready (and the hook Job's pod Succeeded). Slow: ``make kube-test``.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localinfra.chart_tools import CHART_DIR, crd_manifests, helm
from localinfra.kube import KubeError, LocalKube
from localinfra.process import wait_for

pytestmark = pytest.mark.kube

RELEASE = "captioning"
NAMESPACE = "captioning"
VALIDATION_NAMESPACE = "validation"
SECRET = "captioning-credentials"
CREDENTIALS = {
    "CAPTIONING_API_KEYS": "test-api-key",
    "CAPTIONING_REVIEWER_KEYS": "alice=test-reviewer-key",
    "CAPTIONING_REVIEW_SIGNING_KEY": "test-signing-key",
    "CAPTIONING_S3_ACCESS_KEY_ID": "test-access-key",
    "CAPTIONING_S3_SECRET_ACCESS_KEY": "test-secret-key",
    "CAPTIONING_KAFKA_SASL_USERNAME": "captioning",
    "CAPTIONING_KAFKA_SASL_PASSWORD": "test-sasl-password",
}
# Endpoints nothing listens on: the pods never run, the chart only has to carry them.
VALUES = {
    "auth": {"existingSecret": SECRET},
    "kafka": {
        "bootstrapServers": "kafka-0.kafka.invalid:9093,kafka-1.kafka.invalid:9093",
        "securityProtocol": "SASL_SSL",
        "saslMechanism": "SCRAM-SHA-512",
    },
    "s3": {"endpointUrl": "https://objects.storage.invalid:9000", "bucket": "captioning-test"},
    "keda": {"enabled": True},
    "triton": {"gpu": {"enabled": True}},
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "dashboards": {"enabled": True},
    },
}
# Kinds the values above must render, so that each CRD and built-in API is exercised.
EXPECTED_KINDS = {
    "ConfigMap", "Deployment", "Job", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule", "ScaledObject",
    "Service", "ServiceMonitor",
}
STRICT_DRY_RUN = {"dryRun": "All", "fieldValidation": "Strict"}


@pytest.fixture(scope="module")
def kube() -> Iterator[LocalKube]:
    """The local control plane with the chart's CRDs established and both namespaces created."""
    with LocalKube() as cluster:
        print(f"\nlocal Kubernetes control plane up in {cluster.start_seconds:.1f}s")
        for manifest in crd_manifests(cluster.config):
            name = cluster.create(yaml.safe_load(manifest.read_text()))["metadata"]["name"]
            wait_for(lambda name=name: _established(cluster, name), 60, what=f"CRD {name}")
        for namespace in (NAMESPACE, VALIDATION_NAMESPACE):
            cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        yield cluster


def _established(cluster: LocalKube, name: str) -> bool:
    crd = cluster.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"].get("conditions", []))


@pytest.fixture(scope="module")
def values_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("values") / "values.yaml"
    path.write_text(yaml.safe_dump(VALUES))
    return path


def _helm(kube: LocalKube, *args: str) -> str:
    command = [str(helm(kube.config)), *args]
    result = subprocess.run(command, env={**os.environ, **kube.env()}, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def rendered(kube: LocalKube, values_file: Path) -> list[dict[str, Any]]:
    """What ``helm template`` renders for the test values (hooks included), against the server's API versions."""
    output = _helm(
        kube, "template", RELEASE, str(CHART_DIR), "--namespace", VALIDATION_NAMESPACE, "--values", str(values_file), "--validate"
    )
    manifests = [document for document in yaml.safe_load_all(output) if document]
    assert EXPECTED_KINDS <= {m["kind"] for m in manifests}
    return manifests


def _list(kube: LocalKube, path: str, **query: str) -> list[dict[str, Any]]:
    return kube.request("GET", path, query=query or None)["items"]


def test_the_server_accepts_every_rendered_manifest_under_strict_field_validation(
    kube: LocalKube, rendered: list[dict[str, Any]]
) -> None:
    refused = {}
    for manifest in rendered:
        try:
            kube.create(manifest, VALIDATION_NAMESPACE, STRICT_DRY_RUN)
        except KubeError as error:
            refused[f"{manifest['kind']}/{manifest['metadata']['name']}"] = str(error)
    assert not refused, json.dumps(refused, indent=2)
    assert _list(kube, f"/apis/apps/v1/namespaces/{VALIDATION_NAMESPACE}/deployments") == []  # a dry run stores nothing
    kinds = Counter(m["kind"] for m in rendered)
    print(f"\nstrict dry run accepted {len(rendered)} manifests: {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}")


@pytest.mark.parametrize("kind", ["Deployment", "ScaledObject", "ServiceMonitor", "PrometheusRule"])
def test_strict_field_validation_refuses_an_unknown_field(kube: LocalKube, rendered: list[dict[str, Any]], kind: str) -> None:
    """The same manifest with one misspelt field: refused under Strict, accepted (the field dropped) under Ignore."""
    manifest = copy.deepcopy(next(m for m in rendered if m["kind"] == kind))
    manifest["spec"]["replicaCountt"] = 3
    with pytest.raises(KubeError) as refused:
        kube.create(manifest, VALIDATION_NAMESPACE, STRICT_DRY_RUN)
    assert refused.value.status in (400, 422)
    assert 'unknown field "spec.replicaCountt"' in str(refused.value)
    accepted = kube.create(manifest, VALIDATION_NAMESPACE, {"dryRun": "All", "fieldValidation": "Ignore"})
    assert "replicaCountt" not in accepted["spec"]


def test_helm_install_waits_for_a_ready_release(kube: LocalKube, values_file: Path, rendered: list[dict[str, Any]]) -> None:
    data = {key: base64.b64encode(value.encode()).decode() for key, value in CREDENTIALS.items()}
    kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}, "type": "Opaque", "data": data}, NAMESPACE)

    began = time.monotonic()
    _helm(kube, "install", RELEASE, str(CHART_DIR), "--namespace", NAMESPACE, "--values", str(values_file), "--wait", "--timeout", "5m")
    print(f"\nhelm install --wait: {time.monotonic() - began:.1f}s")

    _assert_ready_on_fake_nodes(kube)
    _assert_hook_job_completed(kube)
    for manifest in rendered:  # everything but the hooks stays, in the release's namespace
        metadata = manifest["metadata"]
        if "helm.sh/hook" not in metadata.get("annotations", {}):
            installed = {**manifest, "metadata": {**metadata, "namespace": NAMESPACE}}
            kube.request("GET", f"{kube.collection_path(installed, NAMESPACE)}/{metadata['name']}")

    _helm(kube, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "2m")
    assert _list(kube, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments") == []


def _assert_ready_on_fake_nodes(kube: LocalKube) -> None:
    """Every Deployment fully ready; its pods Running on kwok's nodes; Triton's pods hold a GPU."""
    # helm's wait reads the new ReplicaSets; the deployment controller copies their counts
    # into each Deployment's status asynchronously, so the test waits for it to catch up.
    deadline = time.monotonic() + 30
    while True:
        deployments = _list(kube, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")
        behind = [d for d in deployments if not d["status"].get("readyReplicas") == d["spec"]["replicas"] == d["status"].get("updatedReplicas")]
        if not behind:
            break
        assert time.monotonic() < deadline, f"Deployments not fully ready 30 s after helm's wait: {[(d['metadata']['name'], d['status']) for d in behind]}"
        time.sleep(0.5)
    components = {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments}
    assert components == {"ingest", "caption", "moderation", "indexing", "console", "triton"}

    fake_nodes = {node["metadata"]["name"] for node in _list(kube, "/api/v1/nodes")}
    running = _list(kube, f"/api/v1/namespaces/{NAMESPACE}/pods", fieldSelector="status.phase=Running")
    assert len(running) == sum(d["spec"]["replicas"] for d in deployments)
    assert {pod["spec"]["nodeName"] for pod in running} <= fake_nodes
    triton = [pod for pod in running if pod["metadata"]["labels"]["app.kubernetes.io/component"] == "triton"]
    gpus = [c["resources"].get("limits", {}).get("nvidia.com/gpu") for pod in triton for c in pod["spec"]["containers"]]
    assert triton and gpus.count("1") == len(triton), gpus


def _assert_hook_job_completed(kube: LocalKube) -> None:
    """Helm ran the topic Job to success (and deleted it); the job controller recorded its completion."""
    release = json.loads(_helm(kube, "status", RELEASE, "--namespace", NAMESPACE, "--output", "json"))
    assert release["info"]["status"] == "deployed"
    assert {hook["kind"]: hook["last_run"]["phase"] for hook in release["hooks"]}.get("Job") == "Succeeded", release["hooks"]
    deadline = time.monotonic() + 30  # the controller's event recorder writes asynchronously
    while not _list(kube, f"/api/v1/namespaces/{NAMESPACE}/events", fieldSelector="involvedObject.kind=Job,reason=Completed"):
        assert time.monotonic() < deadline, "the job controller recorded no completed Job within 30 s"
        time.sleep(0.5)
