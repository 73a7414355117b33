"""Unit tests over the rendered manifests: what runs, how it is probed, secured, configured and stopped."""

from __future__ import annotations

import json
import math
import re
import sys
import urllib.request

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from captioning_common.http_api import create_api
from captioning_common.kafka.topics import main as topics_cli
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import OpsServer
from captioning_common.settings import KafkaSettings, ServiceSettings, TritonSettings
from captioning_common.settings_doc import SERVICE_SETTINGS_CLASSES, _load
from localinfra.chart_tools import REPO_ROOT
from localinfra.pipeline import PipelineService
from localinfra.settings import InfraConfig, host_port
from localinfra.triton import Triton
from services.caption.settings import CaptionSettings
from services.console.__main__ import STREAMS_DRAIN_S
from services.console.settings import ConsoleSettings
from services.indexing.settings import IndexingSettings
from services.ingest.settings import IngestSettings
from services.moderation.settings import ModerationSettings
from tests.chart.conftest import MATRIX, RELEASE, Chart, Manifests, config_env, deployment_container

STAGES = {"ingest": IngestSettings, "caption": CaptionSettings, "moderation": ModerationSettings, "indexing": IndexingSettings}
SERVICES = {**STAGES, "console": ConsoleSettings}  # what the services image runs
COMPONENTS = (*SERVICES, "triton")


def pod_spec(manifests: Manifests, component: str) -> dict:
    return manifests.get("Deployment", component)["spec"]["template"]["spec"]


def named_port(container: dict, name: str) -> int:
    (port,) = [port["containerPort"] for port in container["ports"] if port["name"] == name]
    return port


@pytest.mark.parametrize("component", SERVICES)
def test_each_service_runs_what_localinfra_runs(defaults: Manifests, component: str) -> None:
    local_command, _ = PipelineService(InfraConfig(), component).command()
    assert local_command[0] == sys.executable
    assert deployment_container(defaults, component)["command"] == ["python", *local_command[1:]]


@pytest.mark.parametrize("component", SERVICES)
def test_probes_reach_the_services_health_endpoints_on_their_port(defaults: Manifests, component: str) -> None:
    container = deployment_container(defaults, component)
    probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness", "readiness")}
    assert {kind: probe["path"] for kind, probe in probes.items()} == {"startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"}
    (port_name,) = {probe["port"] for probe in probes.values()}
    port = named_port(container, port_name)
    assert port == SERVICES[component]().port  # the code's default port...
    assert config_env(defaults)[f"CAPTIONING_{component.upper()}_PORT"] == str(port)  # ...and the one the ConfigMap sets


def test_the_probed_paths_are_served() -> None:
    """Both servers a service can run (the API's and the ops server) answer /healthz, /readyz and /metrics."""
    client = TestClient(create_api("t", "t", PipelineMetrics("t"), readiness={}))
    ops = OpsServer(CollectorRegistry(), port=0).start()
    try:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200
            with urllib.request.urlopen(f"http://127.0.0.1:{ops.port}{path}", timeout=5) as response:
                assert response.status == 200
    finally:
        ops.stop()


def flags(arguments: list[str]) -> dict[str, str]:
    return dict(argument.removeprefix("--").split("=", 1) for argument in arguments)


def test_triton_runs_with_the_flags_of_its_image_and_of_the_local_server(defaults: Manifests, matrix: dict[str, Manifests]) -> None:
    container = deployment_container(defaults, "triton")
    chart_flags = flags(container["args"])
    # the image's ENTRYPOINT: NVIDIA's entrypoint script, tritonserver, the same flags (the GPU metrics aside)
    dockerfile = (REPO_ROOT / "deploy" / "docker" / "triton.Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*?\])$", dockerfile, re.MULTILINE | re.DOTALL).group(1).replace("\\\n", ""))
    assert container["command"] == entrypoint[:2]
    image_flags = flags(entrypoint[2:])
    assert chart_flags | {"allow-gpu-metrics": "true"} == image_flags
    assert flags(deployment_container(matrix["gpu"], "triton")["args"]) == image_flags | {"model-config-name": "gpu"}
    # the local server's flags, but for the paths of its unpacked wheel
    local_command, _ = Triton(InfraConfig()).command()
    local_flags = flags(local_command[1:])
    assert set(chart_flags) == set(local_flags)
    for flag, value in local_flags.items():
        if flag.endswith("-address"):
            assert chart_flags[flag] == "0.0.0.0"
        elif flag.endswith("-port"):
            assert int(chart_flags[flag]) == int(value) == named_port(container, {"http": "triton-http"}.get(flag[:-5], flag[:-5]))
        elif flag not in ("model-repository", "backend-directory", "cache-directory"):
            assert chart_flags[flag] == value, flag
    assert chart_flags["model-repository"] == "/models"


def test_triton_probes_and_the_urls_the_caption_service_dials(defaults: Manifests) -> None:
    container = deployment_container(defaults, "triton")
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "triton-http"}
    assert container["readinessProbe"]["httpGet"] == container["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "triton-http"}
    env = config_env(defaults)
    service = defaults.get("Service", "triton")
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    assert host_port(env["CAPTIONING_TRITON_GRPC_URL"]) == (service["metadata"]["name"], ports["grpc"])
    assert host_port(env["CAPTIONING_TRITON_HTTP_URL"]) == (service["metadata"]["name"], ports["triton-http"])
    assert host_port(env["CAPTIONING_TRITON_METRICS_URL"]) == (service["metadata"]["name"], ports["metrics"])
    defaults_ports = [host_port(url)[1] for url in (TritonSettings().grpc_url, TritonSettings().http_url, TritonSettings().metrics_url)]
    assert defaults_ports == [ports["grpc"], ports["triton-http"], ports["metrics"]]


@pytest.mark.parametrize("case", MATRIX)
def test_every_pod_runs_as_non_root_on_a_read_only_root_with_writable_tmp_and_home(matrix: dict[str, Manifests], case: str) -> None:
    pods = [doc["spec"]["template"]["spec"] for doc in matrix[case] if doc["kind"] in ("Deployment", "Job")]
    assert len(pods) == (6 if case == "metrics-off" else 7)  # the stages, the console (off in metrics-off), Triton, the topic Job
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}
            env = {item["name"]: item.get("value") for item in container["env"]}
            for writable in ("/tmp", env["HOME"]):  # onnxruntime writes under ~/.cache; Python and libraries under TMPDIR
                assert "emptyDir" in mounts[writable], writable


@pytest.mark.parametrize("component", STAGES)
def test_grace_period_outlasts_a_batch_in_flight(defaults: Manifests, component: str, settings_env) -> None:
    """Longer than one batch wait, one Triton request (caption), one S3 call and one Kafka delivery, from the
    settings the pods really get; the HTTP services also wait out their pre-stop pause."""
    settings_env(config_env(defaults))
    stage, kafka, triton = SERVICES[component](), KafkaSettings(), TritonSettings()
    in_flight = stage.batch_wait_ms / 1000 + 35 + kafka.delivery_timeout_ms / 1000  # 35: S3's 5 s connect + 30 s read timeouts
    if component == "caption":
        in_flight += triton.request_timeout_s
    spec = pod_spec(defaults, component)
    pre_stop = deployment_container(defaults, component).get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    assert pre_stop == (5 if component in ("ingest", "indexing") else 0)
    assert spec["terminationGracePeriodSeconds"] >= math.ceil(in_flight) + pre_stop + 10


def test_console_grace_period_outlasts_its_shutdown(defaults: Manifests) -> None:
    """The pre-stop pause, the drain of its event streams, then up to 10 s for its topic reader's thread to stop."""
    pre_stop = deployment_container(defaults, "console")["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop == 5
    assert pod_spec(defaults, "console")["terminationGracePeriodSeconds"] >= pre_stop + math.ceil(STREAMS_DRAIN_S) + 10 + 10


def test_grace_period_follows_the_timeouts(chart: Chart, defaults: Manifests) -> None:
    slower = chart.render(None, {"triton": {"config": {"requestTimeoutS": 120}}, "kafka": {"deliveryTimeoutMs": 60000}})
    longer = {component: pod_spec(slower, component)["terminationGracePeriodSeconds"] - pod_spec(defaults, component)["terminationGracePeriodSeconds"]
              for component in SERVICES}
    assert longer == {"ingest": 30, "caption": 90 + 30, "moderation": 30, "indexing": 30, "console": 0}


def secret_names(container: dict) -> set[str]:
    return {item["name"] for item in container["env"] if "secretKeyRef" in item.get("valueFrom", {})}


DEPLOYED_SETTINGS = SERVICE_SETTINGS_CLASSES  # what the services the chart deploys read


def test_configmap_secret_and_pod_fields_carry_every_setting_and_only_real_ones(defaults: Manifests, settings_env) -> None:
    """Every CAPTIONING_* variable the pods get is a field of a settings class; together they set every field of
    the classes the deployed services read, and each parses."""
    classes = [_load(path) for path in DEPLOYED_SETTINGS]
    variables = {(cls.model_config.get("env_prefix", "") + name).upper() for cls in classes for name in cls.model_fields}
    config = config_env(defaults)
    containers = [deployment_container(defaults, component) for component in SERVICES]
    from_secret = set().union(*(secret_names(container) for container in containers))
    from_pod = {item["name"] for container in containers for item in container["env"] if "fieldRef" in item.get("valueFrom", {})}
    assert from_pod == {"CAPTIONING_KAFKA_CLIENT_ID"}
    assert set(config) <= variables, set(config) - variables
    assert from_secret <= variables and not from_secret & set(config)
    sasl = {"CAPTIONING_KAFKA_SASL_MECHANISM", "CAPTIONING_KAFKA_SASL_USERNAME", "CAPTIONING_KAFKA_SASL_PASSWORD"}  # set with kafka.saslMechanism
    assert variables - set(config) - from_secret - from_pod == sasl
    pod_name = {"CAPTIONING_KAFKA_CLIENT_ID": f"{RELEASE}-captioning-caption-5d4f8-x2x7q"}
    keys = {"CAPTIONING_REVIEWER_KEYS": "reviewer=another-secret", "CAPTIONING_OPERATOR_KEYS": "operator=third-secret"}
    settings_env(config | pod_name | {name: "a-secret" for name in from_secret} | keys)
    for cls in classes:
        cls()  # raises on a variable that does not parse, and (production) on the local S3 credentials
    assert ServiceSettings().operators() == {"third-secret": "operator"}


def test_sasl_settings_reach_every_kafka_client(chart: Chart) -> None:
    manifests = chart.render(MATRIX["existing-secret"])
    assert config_env(manifests)["CAPTIONING_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    job = manifests.get("Job", "topics")["spec"]["template"]["spec"]["containers"][0]
    for container in [deployment_container(manifests, component) for component in SERVICES] + [job]:
        assert {"CAPTIONING_KAFKA_SASL_USERNAME", "CAPTIONING_KAFKA_SASL_PASSWORD"} <= secret_names(container)


def test_each_service_gets_only_the_secrets_it_uses(defaults: Manifests) -> None:
    s3 = {"CAPTIONING_S3_ACCESS_KEY_ID", "CAPTIONING_S3_SECRET_ACCESS_KEY"}
    expected = {
        "ingest": s3 | {"CAPTIONING_API_KEYS", "CAPTIONING_REVIEWER_KEYS", "CAPTIONING_REVIEW_SIGNING_KEY"},
        "caption": s3,
        "moderation": s3 | {"CAPTIONING_REVIEW_SIGNING_KEY"},
        "indexing": s3 | {"CAPTIONING_API_KEYS"},
        # it checks the three kinds of keys itself and forwards the rest to the APIs, which sign the reviews
        "console": s3 | {"CAPTIONING_API_KEYS", "CAPTIONING_REVIEWER_KEYS", "CAPTIONING_OPERATOR_KEYS"},
    }
    for component, names in expected.items():
        assert secret_names(deployment_container(defaults, component)) == names, component
    assert "env" not in deployment_container(defaults, "triton") or not secret_names(deployment_container(defaults, "triton"))


def test_production_by_default_and_services_listen_beyond_loopback(defaults: Manifests) -> None:
    env = config_env(defaults)
    assert env["CAPTIONING_ENVIRONMENT"] == "production" and env["CAPTIONING_BIND_HOST"] == "0.0.0.0"
    for component in SERVICES:
        assert deployment_container(defaults, component)["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-captioning"}}]


def test_existing_secret_replaces_the_chart_secret(chart: Chart, matrix: dict[str, Manifests]) -> None:
    assert not matrix["existing-secret"].of_kind("Secret")
    for component in SERVICES:
        container = deployment_container(matrix["existing-secret"], component)
        references = {item["valueFrom"]["secretKeyRef"]["name"] for item in container["env"] if "secretKeyRef" in item.get("valueFrom", {})}
        assert references == {"captioning-credentials"}
        annotations = matrix["existing-secret"].get("Deployment", component)["spec"]["template"]["metadata"]["annotations"]
        assert "checksum/secret" not in annotations and "checksum/config" in annotations
    created = matrix["keda-off"].get("Secret")
    assert set(created["data"]) == {
        "CAPTIONING_API_KEYS", "CAPTIONING_REVIEWER_KEYS", "CAPTIONING_REVIEW_SIGNING_KEY", "CAPTIONING_OPERATOR_KEYS",
        "CAPTIONING_S3_ACCESS_KEY_ID", "CAPTIONING_S3_SECRET_ACCESS_KEY",
    }


def checksums(manifests: Manifests) -> dict[str, tuple[str, str]]:
    annotations = {component: manifests.get("Deployment", component)["spec"]["template"]["metadata"]["annotations"] for component in SERVICES}
    return {component: (value["checksum/config"], value.get("checksum/secret", "")) for component, value in annotations.items()}


def test_checksums_change_with_the_configuration_and_the_secret(chart: Chart, defaults: Manifests) -> None:
    before = checksums(defaults)
    config_changed = checksums(chart.render(None, {"caption": {"config": {"batchSize": 16}}}))
    secret_changed = checksums(chart.render(None, {"auth": {"apiKeys": "another-key"}}))
    unrelated = checksums(chart.render(None, {"ingest": {"replicaCount": 5}, "caption": {"resources": {"requests": {"cpu": "2"}}}}))
    assert all(config_changed[c][0] != before[c][0] and config_changed[c][1] == before[c][1] for c in SERVICES)
    assert all(secret_changed[c][1] != before[c][1] and secret_changed[c][0] == before[c][0] for c in SERVICES)
    assert unrelated == before


def test_gpu_settings(matrix: dict[str, Manifests]) -> None:
    gpu, cpu = deployment_container(matrix["gpu"], "triton"), deployment_container(matrix["defaults"], "triton")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1 and "nvidia.com/gpu" not in cpu["resources"].get("limits", {})
    assert "--model-config-name=gpu" in gpu["args"] and not any(arg.startswith("--model-config-name") for arg in cpu["args"])
    assert "--allow-gpu-metrics=true" in gpu["args"] and "--allow-gpu-metrics=false" in cpu["args"]
    # every model with a gpu config gets a writable TensorRT engine cache (its model.py writes <version>/trt_cache)
    gpu_models = sorted(path.parent.parent.name for path in (REPO_ROOT / "model_repository").glob("*/configs/gpu.pbtxt"))
    assert gpu_models and sorted(m["mountPath"] for m in gpu["volumeMounts"] if m["name"] == "engine-cache") == [f"/models/{m}/1/trt_cache" for m in gpu_models]
    volumes = {volume["name"]: volume for volume in pod_spec(matrix["gpu"], "triton")["volumes"]}
    assert volumes["engine-cache"]["persistentVolumeClaim"]["claimName"] == "triton-engines"
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    assert pod_spec(matrix["gpu"], "triton")["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_topology_spread_and_disruption_budgets_select_each_component(defaults: Manifests) -> None:
    for component in COMPONENTS:
        selector = defaults.get("Deployment", component)["spec"]["selector"]["matchLabels"]
        constraints = pod_spec(defaults, component)["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        assert all(c["labelSelector"]["matchLabels"] == selector for c in constraints)
        budget = defaults.get("PodDisruptionBudget", component)["spec"]
        assert budget["selector"]["matchLabels"] == selector and budget["maxUnavailable"] == 1


def test_the_search_service_selects_every_indexing_replica(defaults: Manifests) -> None:
    """Every replica serves search; only the lease holder consumes, and nothing in the chart tells them apart."""
    service = defaults.get("Service", "indexing")
    assert service["spec"]["selector"] == defaults.get("Deployment", "indexing")["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_network_policies(defaults: Manifests, matrix: dict[str, Manifests]) -> None:
    policies = {component: defaults.get("NetworkPolicy", component)["spec"] for component in COMPONENTS}
    for component, policy in policies.items():
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        assert policy["podSelector"]["matchLabels"] == defaults.get("Deployment", component)["spec"]["selector"]["matchLabels"]
    egress_ports = {component: {port["port"] for rule in policy["egress"] for port in rule["ports"]} for component, policy in policies.items()}
    assert egress_ports["caption"] == {53, 9092, 443, 8001}
    assert egress_ports["ingest"] == egress_ports["moderation"] == egress_ports["indexing"] == {53, 9092, 443}
    assert egress_ports["console"] == {53, 9092, 443, 8080, 8081}
    assert egress_ports["triton"] == {53}
    (grpc,) = [rule for rule in policies["triton"]["ingress"] if rule["ports"][0]["port"] == "grpc"]
    assert grpc["from"] == [{"podSelector": {"matchLabels": defaults.get("Deployment", "caption")["spec"]["selector"]["matchLabels"]}}]
    # endpoints of the values: the brokers' and S3's ports, the peers given
    custom = {component: matrix["existing-secret"].get("NetworkPolicy", component)["spec"] for component in ("caption", "ingest", "console")}
    ports = [{port["port"] for port in rule["ports"]} for rule in custom["caption"]["egress"]]
    assert {9093} in ports and {9000} in ports
    (api, from_console) = custom["ingest"]["ingress"]
    assert [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in api["from"]] == ["gateway", "monitoring"]
    console_pods = {"podSelector": {"matchLabels": defaults.get("Deployment", "console")["spec"]["selector"]["matchLabels"]}}
    assert from_console == {"ports": [{"port": "http", "protocol": "TCP"}], "from": [console_pods]}
    (pages,) = custom["console"]["ingress"]
    assert [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in pages["from"]] == ["gateway", "monitoring"]
    assert [{port["port"] for port in rule["ports"]} for rule in custom["console"]["egress"]][1:] == [{9093}, {9000}, {8080}, {8081}]


@pytest.mark.parametrize("api", ["ingest", "indexing"])
def test_the_console_may_call_each_api_and_only_its_pods(defaults: Manifests, api: str) -> None:
    """Its egress reaches the API's pods on their container port (a Service port is translated before a policy applies)."""
    pods = {"podSelector": {"matchLabels": defaults.get("Deployment", api)["spec"]["selector"]["matchLabels"]}}
    port = named_port(deployment_container(defaults, api), "http")
    rules = [rule for rule in defaults.get("NetworkPolicy", "console")["spec"]["egress"] if rule.get("to") == [pods]]
    assert rules == [{"ports": [{"port": port, "protocol": "TCP"}], "to": [pods]}]
    assert {"ports": [{"port": "http", "protocol": "TCP"}], "from": [{"podSelector": {"matchLabels": defaults.get("Deployment", "console")["spec"]["selector"]["matchLabels"]}}]} in \
        defaults.get("NetworkPolicy", api)["spec"]["ingress"]


def test_the_console_calls_the_in_cluster_api_services(defaults: Manifests, settings_env) -> None:
    """The URLs the console's settings read name each API's Service and its port, which leads to the API's container port."""
    settings_env(config_env(defaults))
    settings = ConsoleSettings()
    for api, url in (("ingest", settings.ingest_url), ("indexing", settings.search_url)):
        service = defaults.get("Service", api)
        ((port,),) = [[p for p in service["spec"]["ports"] if p["name"] == "http"]]
        assert url == f"http://{service['metadata']['name']}:{port['port']}"
        assert port["targetPort"] == "http" and service["spec"]["selector"] == defaults.get("Deployment", api)["spec"]["selector"]["matchLabels"]


def test_without_the_console_nothing_of_it_is_rendered(chart: Chart, matrix: dict[str, Manifests]) -> None:
    manifests = chart.render(MATRIX["metrics-off"], {"console": {"ingress": {"enabled": True}}})
    assert [doc["kind"] for doc in manifests if doc["metadata"]["name"].endswith("-console")] == []
    assert not [name for name in config_env(manifests) if name.startswith("CAPTIONING_CONSOLE_")]
    assert [rule.get("from") for rule in manifests.get("NetworkPolicy", "ingest")["spec"]["ingress"]] == [None]
    assert config_env(manifests).items() <= config_env(matrix["defaults"]).items() and manifests.of_kind("Ingress") == []


def test_topic_job_applies_the_spec_with_the_sizes_of_the_values(matrix: dict[str, Manifests], capsys: pytest.CaptureFixture[str]) -> None:
    job = matrix["existing-secret"].get("Job", "topics")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "captioning_common.kafka", "apply"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["CAPTIONING_KAFKA_BOOTSTRAP_SERVERS"] == "kafka-0.kafka:9093,kafka-1.kafka:9093,kafka-2.kafka:9093"
    assert env["CAPTIONING_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    topics_cli(["list", *container["args"]])  # the real CLI parses the Job's arguments
    listed = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()}
    assert listed["images.uploaded"] == listed["images.uploaded.dlq"] == ["partitions=48", "replication=3"]
    assert listed["captions.generated"] == ["partitions=24", "replication=3"]
