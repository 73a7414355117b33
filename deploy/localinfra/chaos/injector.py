"""Carries out a fault schedule: SIGKILL each target's process group on time, start it again after its downtime.

Like a supervisor, it starts a process that exits while starting again (up to
``START_ATTEMPTS`` times, backing off); each such crash is kept with its log's last
lines, and a process that never comes back is an error.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from localinfra.chaos.schedule import Fault
from localinfra.components import Component

START_ATTEMPTS = 5


@dataclass
class Outcome:
    """What happened to one fault: when the kill landed, and how long the restart took to be healthy."""

    fault: Fault
    killed_at_s: float | None = None
    pid: int | None = None
    lag_at_kill: dict | None = None
    ready_after_s: float | None = None
    crashes_on_start: list[str] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict:
        return {
            **self.fault.as_dict(), "killed_at_s": self.killed_at_s, "pid": self.pid, "lag_at_kill": self.lag_at_kill,
            "ready_after_s": self.ready_after_s, "crashes_on_start": self.crashes_on_start, "error": self.error,
        }


@dataclass
class FaultInjector:
    """Runs the schedule on a thread; a target's next kill waits until its previous restart is healthy."""

    faults: list[Fault]
    targets: dict[str, Component]
    log: object = print
    lag: object = None  # () -> {group: lag}, read just before each kill (evidence that it landed mid-stream)
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = sorted({fault.target for fault in self.faults} - set(self.targets))
        if unknown:
            raise ValueError(f"the schedule names unknown targets: {', '.join(unknown)}")
        self._thread = threading.Thread(target=self._run, name="fault-injector", daemon=True)
        self._restarts = ThreadPoolExecutor(4, thread_name_prefix="restart")
        self._pending: dict[str, Future] = {}
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def wait(self) -> list[Outcome]:
        """Block until every fault was injected and every restart finished."""
        self._thread.join()
        for future in list(self._pending.values()):
            future.result()
        self._restarts.shutdown()
        return self.outcomes

    def _now(self) -> float:
        return time.monotonic() - self._started

    def _run(self) -> None:
        for fault in self.faults:
            time.sleep(max(0.0, fault.at_s - self._now()))
            outcome = Outcome(fault)
            self.outcomes.append(outcome)
            previous = self._pending.get(fault.target)
            if previous is not None:
                previous.result()
            component = self.targets[fault.target]
            pid = component.process.pid()
            if pid is None:
                outcome.error = "not running at its kill time"
                self.log(f"[chaos {self._now():6.1f}s] {fault.target}: {outcome.error}")
                continue
            outcome.lag_at_kill = self._lag()
            _kill_group(pid)
            while component.process.pid() is not None:
                time.sleep(0.05)
            outcome.killed_at_s, outcome.pid = round(self._now(), 2), pid
            self.log(f"[chaos {self._now():6.1f}s] SIGKILL {fault.target} (pid {pid}, lag {outcome.lag_at_kill}); restart in {fault.down_s:.1f}s")
            self._pending[fault.target] = self._restarts.submit(self._restart, component, outcome)

    def _lag(self) -> dict | None:
        try:
            return self.lag() if self.lag else None
        except Exception:  # a broker down: no figure, the kill goes ahead
            return None

    def _restart(self, component: Component, outcome: Outcome) -> None:
        time.sleep(outcome.fault.down_s)
        began = time.monotonic()
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                component.start()
                outcome.ready_after_s = round(time.monotonic() - began, 2)
                self.log(f"[chaos {self._now():6.1f}s] {component.instance} healthy again after {outcome.ready_after_s:.1f}s")
                return
            except RuntimeError as exc:  # exited while starting: a supervisor starts it again
                outcome.crashes_on_start.append(_last_lines(str(exc)))
                self.log(f"[chaos {self._now():6.1f}s] {component.instance} exited while starting (attempt {attempt}): {outcome.crashes_on_start[-1][-300:]}")
                time.sleep(min(2 ** attempt, 10))
            except Exception as exc:  # not healthy in time: recorded as a violation, the run goes on
                outcome.error = f"restart failed: {exc}"[:2000]
                self.log(f"[chaos {self._now():6.1f}s] {component.instance}: {outcome.error[:300]}")
                return
        outcome.error = f"restart failed: exited while starting {START_ATTEMPTS} times"


def _last_lines(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])[:1500]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
