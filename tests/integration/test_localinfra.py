"""`python -m localinfra` against the servers of this test session."""

from __future__ import annotations

import subprocess
import sys

from captioning_common.kafka import load_topics
from tests.conftest import REPO_ROOT


def localinfra(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "localinfra", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_status_shows_every_server_healthy(kafka, s3, triton) -> None:
    result = localinfra("status", "kafka", "s3", "triton")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["kafka", "s3", "triton"]
    assert all(line.split()[1] == "healthy" for line in lines)


def test_up_is_idempotent(kafka, s3, triton) -> None:
    result = localinfra("up", "kafka", "s3", "triton")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("kafka", "s3", "triton"):
        assert f"{name}: healthy (" in result.stdout
    assert f"{len(load_topics())} topics declared, 0 created" in result.stdout
    assert "bucket captioning present" in result.stdout


def test_unknown_component_is_a_clear_error() -> None:
    result = localinfra("up", "postgres")
    assert result.returncode == 1
    assert "unknown component(s) postgres; known: kafka, s3, triton, ingest, caption, moderation, indexing, console, prometheus" in result.stderr
