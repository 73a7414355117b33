"""CPU time per process group from /proc, as the benchmark reads it for each component."""

from __future__ import annotations

import subprocess
import sys

from localinfra.cpu_time import cpu_ms_per_item, cpu_seconds_by_group

BURN = "import os, time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\nos.read(0, 1)"


def test_the_cpu_of_a_process_group_counts_its_children_and_nothing_else() -> None:
    leader = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN!r}])"],
                              stdin=subprocess.PIPE, start_new_session=True)
    try:
        while cpu_seconds_by_group().get(leader.pid, 0.0) < 0.35:  # the child burns 0.4 s, then waits for stdin
            assert leader.poll() is None
        assert cpu_seconds_by_group()[leader.pid] < 2.0
        assert 2**22 + 7 not in cpu_seconds_by_group()  # no such group
    finally:
        leader.stdin.close()
        leader.wait(timeout=10)


def test_cpu_ms_per_item_covers_the_components_read_both_times() -> None:
    assert cpu_ms_per_item({"kafka": 1.0, "triton": 2.0}, {"kafka": 1.5, "triton": 4.0, "console": 9.0}, 10) == {"kafka": 50.0, "triton": 200.0}
