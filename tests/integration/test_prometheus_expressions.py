"""Every PromQL expression of the chart's rules and dashboards, evaluated by a real Prometheus after demo traffic.

A Prometheus of the test's own (the component `make up` runs: Debian's 2.42, here on a
free port with an empty database) scrapes this session's four services and Triton every
2 s with the chart's rule files. The test sends the demo's kind of traffic through the
pipeline (real photographs the demo uploads, salted so that they are new; generated
scenes; a search), plus a refused upload and a poison message (a dead letter), waits
until every image is done, and then asks Prometheus' HTTP API for:

- every recording rule's expression and every dashboard query, each of which must be
  valid and return at least one series. Grafana's built-in variables become fixed
  windows; a template variable takes each value Prometheus lists for it, and the query
  must return series for at least one of them (an API panel shows nothing for a worker);
- every alert's conditions. A quiet alert's expression returns nothing by design, so it
  is split along its syntax tree (promql-parser) into probes: the operands of
  ``and``/``or``/``unless``, and each filtering comparison turned into its ``bool`` form,
  which returns a 0 or 1 for every pair of series the comparison sees and nothing when
  either side has none. A misspelt metric, label or recorded series leaves a probe
  empty and fails the test.

An expression still empty is asked again until a deadline (scrapes and rule evaluations
run every 2 s); an invalid one fails at once.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.parse
import urllib.request

import pytest
from confluent_kafka import Producer
from PIL import Image

from localinfra.prometheus import Prometheus
from localinfra.settings import free_port
from perception.real_photos import REAL_PHOTOS
from tests.integration.pipeline_client import salted, scene_images, search, upload, upload_all, wait_for
from tests.observability import (
    alerts, dashboards, label_values, probes, queries, query_variables, recording_rules, rules, substitute,
)

TAG = "prometheus"  # salts this module's uploads: ids no other test module shares

SERVICES = {"ingest", "caption", "moderation", "indexing"}
PHOTOS = 3  # of the demo's real photographs: each runs the classifier, detector and text reader


@pytest.fixture(scope="module")
def prometheus(servers, pipeline, triton) -> Prometheus:
    """A Prometheus scraping this session's services and Triton, with the chart's rules."""
    targets = {name: [f"http://127.0.0.1:{service.port}/metrics"] for name, service in pipeline.services.items()}
    targets["triton"] = [servers.config.triton.metrics_url]
    component = Prometheus(servers.config, instance="test-prometheus", targets=targets, port=free_port(), fresh=True)
    servers.start_extra(component)
    return component


@pytest.fixture(scope="module")
def traffic(prometheus, pipeline, kafka) -> None:
    """Images through the whole pipeline, a search, a refused upload and a dead letter."""
    images = [salted(Image.fromarray(photo.pixels()), "JPEG", tag=TAG) for photo in REAL_PHOTOS[:PHOTOS]] + scene_images(3, seed=7117, tag=TAG)
    ids = [response.json()["id"] for response in upload_all(pipeline, images)]
    assert upload(pipeline, b"this is not an image").status_code in (400, 415)
    poison = Producer(kafka.client_config())
    poison.produce("images.uploaded", key=b"prometheus-poison", value=b"not an event")
    poison.flush(30)
    wait_for(pipeline, ids)
    assert search(pipeline, "a photo").status_code == 200


def unanswered(prometheus: Prometheus, expressions: dict[str, list[str]], timeout_s: float = 60) -> dict[str, str]:
    """Name -> problem of each expression that is invalid, or returns no series for any of its variants within ``timeout_s``."""
    pending, problems = dict(expressions), {}
    deadline = time.monotonic() + timeout_s
    while pending:
        for name, variants in list(pending.items()):
            try:
                answered = [bool(prometheus.query(variant)) for variant in variants]
            except ValueError as error:
                problems[name] = f"invalid: {error}"
                del pending[name]
                continue
            if any(answered):
                del pending[name]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    return problems | {name: f"no series: {variants[0]}" for name, variants in pending.items()}


def variable_values(prometheus: Prometheus, query: str) -> list[str]:
    """The values Grafana's ``label_values(selector, label)`` lists."""
    selector, label = label_values(query)
    url = f"{prometheus.url}/api/v1/label/{label}/values?{urllib.parse.urlencode({'match[]': selector})}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)["data"]


def test_the_service_variable_lists_every_service(prometheus, traffic) -> None:
    board = dashboards()["service-detail"]
    deadline = time.monotonic() + 30
    while set(variable_values(prometheus, query_variables(board)["service"])) != SERVICES and time.monotonic() < deadline:
        time.sleep(1)
    assert set(variable_values(prometheus, query_variables(board)["service"])) == SERVICES


def test_every_recording_rule_returns_series(prometheus, traffic) -> None:
    assert unanswered(prometheus, {rule["record"]: [rule["expr"]] for rule in recording_rules()}) == {}


def test_every_condition_of_every_alert_returns_series(prometheus, traffic) -> None:
    expressions = {f"{alert['alert']} #{i}": [probe] for alert in alerts() for i, probe in enumerate(probes(alert["expr"]))}
    assert len(expressions) >= len(alerts())
    assert unanswered(prometheus, expressions) == {}


def test_a_misspelt_metric_leaves_its_condition_empty(prometheus, traffic) -> None:
    """The method can fail: the stalled alert with one metric misspelt keeps its lag probe and loses the other."""
    (stalled,) = [alert["expr"] for alert in alerts() if alert["alert"] == "CaptioningStageStalled"]
    lag, handled = probes(stalled.replace("captioning_messages_total", "captioning_message_total"))
    assert unanswered(prometheus, {"lag": [lag], "handled": [handled]}, timeout_s=3) == {"handled": f"no series: {handled}"}


def test_every_dashboard_query_returns_series(prometheus, traffic) -> None:
    expressions = {}
    for name, board in dashboards().items():
        variables = {variable: variable_values(prometheus, query) for variable, query in query_variables(board).items()}
        assert all(variables.values()), f"{name}: a template variable has no value"
        combinations = [dict(zip(variables, values)) for values in itertools.product(*variables.values())]
        for i, (title, expression) in enumerate(queries(board)):
            expressions[f"{name}: {title} #{i}"] = [substitute(expression, values) for values in combinations]
    assert unanswered(prometheus, expressions) == {}


def test_prometheus_loaded_every_rule_and_scrapes_every_target(prometheus, traffic) -> None:
    loaded = {rule["name"]: rule["health"] for group in _api(prometheus, "rules")["groups"] for rule in group["rules"]}
    assert loaded.keys() == {rule.get("alert") or rule["record"] for rule in rules()}
    assert set(loaded.values()) == {"ok"}, loaded
    targets = _api(prometheus, "targets")["activeTargets"]
    assert {target["labels"]["job"] for target in targets} == SERVICES | {"triton"}
    assert all(target["labels"]["pipeline"] == "captioning" and target["health"] == "up" for target in targets), targets


def test_the_web_ui_finds_every_file_it_loads(prometheus) -> None:
    with urllib.request.urlopen(f"{prometheus.url}/classic/graph", timeout=30) as response:
        page = response.read().decode()
    assets = set(re.findall(r'(?:href|src)="(/classic/static/[^"?]+)', page))
    assert len(assets) > 10
    for asset in sorted(assets):
        with urllib.request.urlopen(prometheus.url + asset, timeout=30) as response:
            assert response.status == 200 and response.read(), asset


def _api(prometheus: Prometheus, path: str) -> dict:
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/{path}", timeout=30) as response:
        return json.load(response)["data"]
