"""The /metrics, /healthz, /readyz server and the standard metrics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import OpsServer


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def served():
    metrics = PipelineMetrics("caption")
    state = {"ready": False}

    def broken() -> bool:
        raise ConnectionError("broker down")

    server = OpsServer(metrics.registry, liveness={"loop": lambda: True}, readiness={"kafka": lambda: state["ready"]}).start()
    yield metrics, state, server, broken
    server.stop()


def test_metrics_endpoint_exposes_the_standard_metrics(served) -> None:
    metrics, _, server, _ = served
    metrics.message("images.uploaded", "ok")
    metrics.dead_letter("images.uploaded.dlq", "image_undecodable")
    metrics.error("triton_unavailable")
    metrics.observe_batch(8)
    metrics.set_lag({("images.uploaded", 3): 42})
    with metrics.time_stage("inference"):
        pass
    status, body = get(f"http://127.0.0.1:{server.port}/metrics")
    assert status == 200
    for line in (
        'captioning_messages_total{outcome="ok",service="caption",topic="images.uploaded"} 1.0',
        'captioning_dead_letters_total{reason="image_undecodable",service="caption",topic="images.uploaded.dlq"} 1.0',
        'captioning_errors_total{reason="triton_unavailable",service="caption"} 1.0',
        'captioning_batch_size_count{service="caption"} 1.0',
        'captioning_consumer_lag{partition="3",service="caption",topic="images.uploaded"} 42.0',
        'captioning_stage_seconds_count{service="caption",stage="inference"} 1.0',
    ):
        assert line in body


def test_lag_of_a_revoked_partition_is_no_longer_published() -> None:
    metrics = PipelineMetrics("caption")
    metrics.set_lag({("images.uploaded", 0): 5, ("images.uploaded", 3): 42})
    metrics.set_lag({("images.uploaded", 0): 2})  # partition 3 went to another replica
    (family,) = [family for family in metrics.registry.collect() if family.name == "captioning_consumer_lag"]
    samples = {sample.labels["partition"]: sample.value for sample in family.samples}
    assert samples == {"0": 2.0}


def test_readiness_follows_its_checks(served) -> None:
    _, state, server, broken = served
    status, body = get(f"http://127.0.0.1:{server.port}/readyz")
    assert status == 503 and json.loads(body)["checks"] == {"kafka": "failing"}
    state["ready"] = True
    assert get(f"http://127.0.0.1:{server.port}/readyz")[0] == 200
    server.readiness["s3"] = broken
    status, body = get(f"http://127.0.0.1:{server.port}/readyz")
    assert status == 503 and json.loads(body)["checks"]["s3"] == "error: ConnectionError"


def test_liveness_and_unknown_paths(served) -> None:
    _, _, server, _ = served
    assert get(f"http://127.0.0.1:{server.port}/healthz") == (200, '{"status": "ok", "checks": {"loop": "ok"}}')
    assert get(f"http://127.0.0.1:{server.port}/nope")[0] == 404
