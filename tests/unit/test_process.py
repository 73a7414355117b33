"""The background-process manager of the local infrastructure."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from localinfra.process import ManagedProcess, wait_for
from localinfra.settings import host_port


def test_start_find_stop(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    pid = process.start([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    assert process.pid() == pid
    wait_for(lambda: "up" in process.log_file.read_text(), 10, process)
    assert process.stop() is True
    assert process.pid() is None and not process.pid_file.exists()
    assert process.stop() is False


def test_sigterm_ignoring_process_is_killed(tmp_path: Path) -> None:
    process = ManagedProcess("stubborn", tmp_path)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    process.start([sys.executable, "-c", code])
    wait_for(lambda: "up" in process.log_file.read_text(), 10, process)
    assert process.stop(timeout_s=1) is True
    assert process.pid() is None


def test_wait_for_reports_an_early_exit_with_the_log(tmp_path: Path) -> None:
    process = ManagedProcess("crasher", tmp_path)
    process.start([sys.executable, "-c", "print('bad config'); raise SystemExit(2)"])
    with pytest.raises(RuntimeError, match="crasher exited while starting(.|\n)*bad config"):
        wait_for(lambda: False, 10, process)


def test_host_port() -> None:
    assert host_port("127.0.0.1:9092") == ("127.0.0.1", 9092)
    assert host_port("http://localhost:8002/metrics") == ("localhost", 8002)
    assert host_port("https://s3.example") == ("s3.example", 443)
