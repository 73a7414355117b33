"""The short chaos run: the pipeline keeps its promises while its processes are SIGKILLed.

Its own three-node Kafka cluster, MinIO, Triton and services (two caption replicas)
on ports of its own; 60 items, five service kills (every service, the second caption
replica included), one broker and MinIO killed and restarted. ``make chaos`` is the
long run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.timeout(900)
def test_a_short_chaos_run_keeps_every_promise(tmp_path) -> None:
    report_path = tmp_path / "chaos.json"
    command = [
        sys.executable, "-m", "localinfra.chaos", "--seed", "0", "--uploads", "60", "--duration", "45", "--kills", "5",
        "--restart-servers", "s3", "--state-dir", ".local/chaos-test", "--port-base", "23000",
        "--drain-timeout", "180", "--client-budget", "120", "--report", str(report_path),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=840)
    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert report_path.exists(), output
    report = json.loads(report_path.read_text())
    assert result.returncode == 0, json.dumps(report["violations"][:20], indent=1) + "\n" + output
    assert report["violations"] == []

    assert report["kafka"] == {"brokers": 3, "min_replicas": 3, "max_replicas": 3, "min_insync_replicas": 2}
    killed = [fault for fault in report["schedule"] if fault["killed_at_s"] is not None]
    assert {fault["target"] for fault in killed} >= {"ingest", "caption", "caption-1", "moderation", "indexing", "s3"}
    assert sum(fault["kind"] == "broker" for fault in killed) == 1
    assert all(fault["ready_after_s"] is not None for fault in killed), report["schedule"]

    figures = report["figures"]
    assert figures["items"] == 60 and figures["by_route"]["claim-check"] > 0
    assert sum(figures["final"].values()) == 60 and "not_final" not in figures["final"]
    assert figures["index_rows"] == figures["final"].get("indexed", 0)
    assert figures["held_for_review"] > 0 and sum(figures["decisions"].values()) == figures["held_for_review"]
    assert isinstance(report["http"]["503"], int)
