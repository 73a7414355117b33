"""The optional Ingresses of the upload API, the search API and the web console."""

from __future__ import annotations

import pytest
import yaml

from tests.chart.conftest import MATRIX, Chart, Manifests

EXPOSED = ("ingest", "indexing", "console")


def test_no_ingress_by_default(defaults: Manifests) -> None:
    assert defaults.of_kind("Ingress") == []


@pytest.mark.parametrize("component", EXPOSED)
def test_each_ingress_routes_its_host_to_the_http_port_of_its_service(matrix: dict[str, Manifests], component: str) -> None:
    manifests = matrix["existing-secret"]
    values = yaml.safe_load(MATRIX["existing-secret"].read_text())[component]["ingress"]
    spec = manifests.get("Ingress", component)["spec"]
    assert spec["ingressClassName"] == "nginx"
    (rule,) = spec["rules"]
    assert rule["host"] == values["hostname"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")  # the routes are absolute: /v1/..., /api/...
    backend = path["backend"]["service"]
    service = manifests.get("Service", component)
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    assert spec["tls"] == [{"hosts": [values["hostname"]], "secretName": values.get("tlsSecretName", f"{values['hostname']}-tls")}]
    assert manifests.get("Ingress", component)["metadata"].get("annotations", {}) == values.get("annotations", {})


def test_an_ingress_without_tls_or_class(chart: Chart) -> None:
    spec = chart.render(None, {"console": {"ingress": {"enabled": True, "hostname": "console.internal"}}}).get("Ingress", "console")["spec"]
    assert "tls" not in spec and "ingressClassName" not in spec
    assert spec["rules"][0]["host"] == "console.internal"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"console": {"ingress": {"hostname": "Console_Host"}}}, "/console/ingress/hostname", id="hostname"),
        pytest.param({"ingest": {"ingress": {"path": "/upload"}}}, "additional properties 'path' not allowed", id="unknown-key"),
        pytest.param({"console": {"config": {"requestTimeoutS": 0}}}, "/console/config/requestTimeoutS", id="console-timeout"),
        pytest.param({"console": {"config": {"maxWatchedImage": 10}}}, "additional properties 'maxWatchedImage' not allowed", id="console-unknown-setting"),
    ],
)
def test_bad_console_and_ingress_values_are_refused(chart: Chart, overrides: dict, message: str) -> None:
    result = chart.run("template", None, overrides)
    assert result.returncode != 0 and message in result.stderr, result.stderr
