"""Reading a model's request and execution counters from Triton's Prometheus metrics."""

from __future__ import annotations

import re
import time
import urllib.request

from captioning_common.settings import TritonSettings


def counters(settings: TritonSettings, model: str) -> tuple[float, float]:
    """(successful requests, executions) of ``model`` (any version it serves) so far."""
    with urllib.request.urlopen(settings.metrics_url, timeout=5) as response:
        text = response.read().decode()
    values = []
    for name in ("nv_inference_request_success", "nv_inference_exec_count"):
        match = re.search(rf'^{name}{{model="{model}",version="\d+"}} (\S+)$', text, re.MULTILINE)
        assert match, f"{name} for {model} missing from Triton metrics"
        values.append(float(match.group(1)))
    return values[0], values[1]


def counters_after(settings: TritonSettings, model: str, requests_at_least: float) -> tuple[float, float]:
    """Counters once Triton's metrics (refreshed every couple of seconds) include the requests sent."""
    deadline = time.monotonic() + 10
    requests, executions = counters(settings, model)
    while requests < requests_at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        requests, executions = counters(settings, model)
    return requests, executions
