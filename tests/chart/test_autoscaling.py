"""Autoscaling: KEDA on consumer-group lag (and Triton on queue time), or HPAs on CPU without KEDA."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from captioning_common.kafka import consumer as consumer_module
from captioning_common.kafka.topics import StageTopics
from captioning_common.settings import KafkaSettings
from localinfra import prometheus
from tests.chart.conftest import MATRIX, NAMESPACE, RELEASE, Chart, Manifests

CONSUMERS = ("ingest", "caption", "moderation")
COMPONENTS = (*CONSUMERS, "indexing", "triton")


def triggers(manifests: Manifests, component: str, kind: str) -> list[dict]:
    return [trigger for trigger in manifests.get("ScaledObject", component)["spec"]["triggers"] if trigger["type"] == kind]


def consumer_config(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The librdkafka configuration a stage's BatchConsumer uses (the client is not started)."""
    captured = {}
    monkeypatch.setattr(consumer_module, "Consumer", lambda config: captured.update(config))
    monkeypatch.setattr(consumer_module, "AdminClient", lambda config: None)
    consumer_module.BatchConsumer(KafkaSettings(), "group", [])
    return captured


@pytest.mark.parametrize("stage", CONSUMERS)
def test_each_worker_scales_on_the_lag_of_its_consumer_group_on_each_input_topic(defaults: Manifests, stage: str, monkeypatch) -> None:
    lag = triggers(defaults, stage, "kafka")
    assert [trigger["metadata"]["topic"] for trigger in lag] == list(StageTopics(stage).inputs)
    policy = consumer_config(monkeypatch)["auto.offset.reset"]
    for trigger in lag:
        metadata = trigger["metadata"]
        assert metadata["consumerGroup"] == stage  # the default group of the stage (group_id empty)
        assert metadata["bootstrapServers"] == "kafka:9092"
        assert metadata["lagThreshold"] == ("100" if stage == "ingest" else "64")
        # KEDA counts a partition without a committed offset the way the consumer will read it
        assert metadata["offsetResetPolicy"] == policy == "earliest"
        assert metadata["scaleToZeroOnInvalidOffset"] == "false" and metadata["allowIdleConsumers"] == "false"
        assert "authenticationRef" not in trigger and metadata["tls"] == "disable"


def test_a_custom_group_id_is_the_group_keda_watches(chart: Chart) -> None:
    manifests = chart.render(None, {"caption": {"config": {"groupId": "caption-blue"}}})
    assert manifests.get("ConfigMap")["data"]["CAPTIONING_CAPTION_GROUP_ID"] == "caption-blue"
    assert {trigger["metadata"]["consumerGroup"] for trigger in triggers(manifests, "caption", "kafka")} == {"caption-blue"}


@pytest.mark.parametrize("case", ["defaults", "existing-secret"])
def test_max_replicas_stay_within_the_partitions_of_the_first_input(matrix: dict[str, Manifests], case: str) -> None:
    values = yaml.safe_load(MATRIX[case].read_text()) if MATRIX[case] else {}
    topics = values.get("kafka", {}).get("topics", {})
    for stage in CONSUMERS:
        first = next(iter(StageTopics(stage).inputs))
        partitions = topics.get("partitionsByTopic", {}).get(first, topics.get("partitions", 12))
        assert matrix[case].get("ScaledObject", stage)["spec"]["maxReplicaCount"] <= partitions


def test_search_replicas_scale_on_cpu_never_on_lag(defaults: Manifests) -> None:
    """Only the lease holder consumes captions.moderated: its lag says nothing about how many search replicas are needed."""
    spec = defaults.get("ScaledObject", "indexing")["spec"]
    assert [trigger["type"] for trigger in spec["triggers"]] == ["cpu"]
    assert spec["minReplicaCount"] >= 2
    assert [trigger["type"] for trigger in defaults.get("ScaledObject", "ingest")["spec"]["triggers"]] == ["kafka", "cpu"]


def test_triton_scales_on_queue_time_per_request(defaults: Manifests, tmp_path) -> None:
    (trigger,) = triggers(defaults, "triton", "prometheus")
    query = trigger["metadata"]["query"]
    selector = f'{{namespace="{NAMESPACE}",job="{RELEASE}-captioning-triton"}}'
    assert f"sum(rate(nv_inference_queue_duration_us{selector}[1m])) / sum(rate(nv_inference_request_success{selector}[1m]))" in query
    assert trigger["metadata"]["threshold"] == "50000" and trigger["metadata"]["serverAddress"].startswith("http://")
    rules = tmp_path / "keda.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "keda", "rules": [{"record": "keda:triton_queue_us_per_request", "expr": query}]}]}))
    check = subprocess.run([str(prometheus.binary("promtool")), "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_stabilisation_windows_against_rebalance_storms(matrix: dict[str, Manifests]) -> None:
    for component in COMPONENTS:
        keda = matrix["defaults"].get("ScaledObject", component)["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        hpa = matrix["keda-off"].get("HorizontalPodAutoscaler", component)["spec"]["behavior"]
        assert keda == hpa
        assert keda["scaleDown"]["stabilizationWindowSeconds"] == 600 and keda["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
        assert keda["scaleUp"]["stabilizationWindowSeconds"] == 60


def test_without_keda_every_component_gets_a_cpu_hpa(matrix: dict[str, Manifests]) -> None:
    manifests = matrix["keda-off"]
    assert not manifests.of_kind("ScaledObject") and not manifests.of_kind("TriggerAuthentication")
    for component in COMPONENTS:
        spec = manifests.get("HorizontalPodAutoscaler", component)["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{RELEASE}-captioning-{component}"}
        assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    assert not matrix["defaults"].of_kind("HorizontalPodAutoscaler")


def test_replicas_belong_to_the_autoscaler_when_there_is_one(matrix: dict[str, Manifests]) -> None:
    for component in COMPONENTS:
        assert "replicas" not in matrix["defaults"].get("Deployment", component)["spec"]
        assert "replicas" not in matrix["keda-off"].get("Deployment", component)["spec"]
        fixed = matrix["metrics-off"].get("Deployment", component)["spec"]
        assert fixed["replicas"] == (1 if component == "triton" else 2)
    assert not matrix["metrics-off"].of_kind("ScaledObject") and not matrix["metrics-off"].of_kind("HorizontalPodAutoscaler")


def test_sasl_credentials_reach_keda_through_a_trigger_authentication(matrix: dict[str, Manifests]) -> None:
    manifests = matrix["existing-secret"]
    authentication = manifests.get("TriggerAuthentication", "kafka")
    assert authentication["spec"]["secretTargetRef"] == [
        {"parameter": "username", "name": "captioning-credentials", "key": "CAPTIONING_KAFKA_SASL_USERNAME"},
        {"parameter": "password", "name": "captioning-credentials", "key": "CAPTIONING_KAFKA_SASL_PASSWORD"},
    ]
    for stage in CONSUMERS:
        for trigger in triggers(manifests, stage, "kafka"):
            assert trigger["authenticationRef"] == {"name": authentication["metadata"]["name"]}
            assert trigger["metadata"]["sasl"] == "scram_sha512" and trigger["metadata"]["tls"] == "enable"
    assert not matrix["defaults"].of_kind("TriggerAuthentication")


@pytest.mark.parametrize("case", ["defaults", "keda-off"])
def test_the_console_runs_its_fixed_replica_count_without_an_autoscaler(matrix: dict[str, Manifests], case: str) -> None:
    """Its load is a few browsers, and each replica reads the topics on its own: more replicas add no throughput."""
    assert matrix[case].get("Deployment", "console")["spec"]["replicas"] == 1
    scalers = [doc for doc in matrix[case] if doc["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]
    assert scalers and not [doc for doc in scalers if doc["metadata"]["name"].endswith("-console")]
