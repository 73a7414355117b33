"""The seeded fault schedule: which process is killed when, and how long it stays down.

Pure logic: the same seed and shape give the same schedule, printed before a run.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Fault:
    """SIGKILL ``target`` (a component instance) ``at_s`` seconds into the run, start it again ``down_s`` later."""

    at_s: float
    target: str
    down_s: float
    kind: str  # "service", "broker" or "server"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Shape:
    """What a schedule must contain."""

    duration_s: float
    service_kills: int
    services: tuple[str, ...]
    brokers: tuple[str, ...]
    servers: tuple[str, ...] = ()  # restarted once each (e.g. "s3", "triton")
    broker_down_s: tuple[float, float] = (10.0, 20.0)
    service_down_s: tuple[float, float] = (0.5, 4.0)
    server_down_s: tuple[float, float] = (1.0, 4.0)


def plan(seed: int, shape: Shape) -> list[Fault]:
    """Service kills spread over the run (every service at least once, then seeded picks), one broker
    killed in the first half, each server restarted once in the second half; sorted by time."""
    if shape.service_kills < len(shape.services):
        raise ValueError(f"{shape.service_kills} kills cannot reach each of the {len(shape.services)} services")
    rng = random.Random(seed)
    span = shape.duration_s
    targets = list(shape.services)
    rng.shuffle(targets)
    targets += [rng.choice(shape.services) for _ in range(shape.service_kills - len(shape.services))]
    slot = span / shape.service_kills
    faults = [
        Fault(round(i * slot + rng.uniform(0.1, 0.9) * slot, 2), target, round(rng.uniform(*shape.service_down_s), 2), "service")
        for i, target in enumerate(targets)
    ]
    if shape.brokers:
        faults.append(Fault(round(rng.uniform(0.15, 0.4) * span, 2), rng.choice(shape.brokers), round(rng.uniform(*shape.broker_down_s), 2), "broker"))
    for i, server in enumerate(shape.servers):  # one at a time, in the second half
        width = 0.45 / len(shape.servers)
        start = 0.5 + i * width
        faults.append(Fault(round(rng.uniform(start, start + 0.8 * width) * span, 2), server, round(rng.uniform(*shape.server_down_s), 2), "server"))
    return sorted(faults, key=lambda fault: (fault.at_s, fault.target))


def describe(seed: int, faults: list[Fault]) -> str:
    """The schedule as printed before a run."""
    lines = [f"fault schedule (seed {seed}): {len(faults)} faults"]
    lines += [f"  t={fault.at_s:7.2f}s  SIGKILL {fault.target:<12} restart after {fault.down_s:5.2f}s  ({fault.kind})" for fault in faults]
    return "\n".join(lines)
