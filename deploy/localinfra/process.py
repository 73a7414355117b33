"""Start, find and stop one background server process with a pid file and a log file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path


class ManagedProcess:
    """A server process that outlives the command that started it.

    The pid file lets ``status`` and ``down`` find the process from another
    command; the process runs in its own session so it is stopped as a group.
    """

    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.home = home
        self.pid_file = home / f"{name}.pid"
        self.log_file = home / f"{name}.log"

    def pid(self) -> int | None:
        """Pid of the running process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (ProcessLookupError, FileNotFoundError):
            state = "gone"
        if state in ("gone", "Z", "X"):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        """Launch ``command`` detached, appending its output to the log file; returns the pid."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        return process.pid

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM the process group, SIGKILL it after ``timeout_s``; True when something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            _signal_group(pid, signal.SIGKILL)
            while self.pid() is not None:
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log, for error messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, signum)


def wait_for(check: Callable[[], bool], timeout_s: float, process: ManagedProcess | None = None, what: str = "") -> float:
    """Poll ``check`` until it is true; returns the seconds waited.

    Fails early with the log tail when ``process`` exits while waiting.
    """
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except Exception:
            pass
        if process is not None and process.pid() is None:
            raise RuntimeError(f"{process.name} exited while starting; log tail:\n{process.log_tail()}")
        if time.monotonic() - start > timeout_s:
            tail = process.log_tail() if process else ""
            raise TimeoutError(f"{what or 'check'} not healthy after {timeout_s:.0f}s\n{tail}")
        time.sleep(0.25)


def answers_ok(url: str, timeout_s: float = 2) -> bool:
    """True when a GET of ``url`` answers 200 (a health or readiness endpoint)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except OSError:
        return False
