"""CPU time the local components have used, read from ``/proc``: where a benchmark's machine goes.

Every component runs in a process group of its own (``BackgroundProcess``), so the CPU of
Triton's python-backend stubs counts for Triton and that of MinIO's or Kafka's threads for
them. Only live processes count: a helper that exited takes its CPU time with it.
"""

from __future__ import annotations

import os
from pathlib import Path

from localinfra.registry import components
from localinfra.settings import InfraConfig

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds_by_group() -> dict[int, float]:
    """User and system CPU seconds of the live processes, summed per process group."""
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process exited while the table was read
            continue
        group = int(fields[2])  # after the name: state, ppid, pgrp, ... utime (12th), stime (13th)
        ticks[group] = ticks.get(group, 0) + int(fields[11]) + int(fields[12])
    return {group: count / _TICKS_PER_S for group, count in ticks.items()}


def cpu_by_component(config: InfraConfig) -> dict[str, float]:
    """CPU seconds used so far by each running component this checkout started, by name."""
    groups = cpu_seconds_by_group()
    used = {}
    for component in components(config):
        pid = component.process.pid()
        if pid is not None:
            used[component.name] = groups.get(pid, 0.0)
    return used


def cpu_ms_per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """CPU milliseconds per item each component spent between two readings (components in both)."""
    return {name: (after[name] - before[name]) * 1000 / items for name in after if name in before}
