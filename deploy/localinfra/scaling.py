"""Several replicas of a pipeline service in one consumer group, and the group as the brokers see it.

Replica 0 is the service ``up`` starts; replica r > 0 is the instance ``<name>-r``
(``PipelineService(config, name, replica=r)``: own pid file, log and home) in the
same consumer group. Every instance names itself to Kafka by its instance name
(``client.id``), so the group's view tells the replicas apart. The counts asked for
are kept in ``<state dir>/replicas.json``: ``status`` reports a replica that died,
``down`` stops every replica.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from confluent_kafka.admin import AdminClient

from captioning_common.kafka.topics import StageTopics
from captioning_common.settings import KafkaSettings
from localinfra.pipeline import SERVICE_NAMES, PipelineService
from localinfra.settings import InfraConfig

Position = tuple[str, int]  # (topic, partition)
GroupView = dict[str, set[Position]]  # client id -> the partitions its members own
# Only the holder of the index writer lease joins the indexing group; the other replicas serve search.
LEASED = ("indexing",)
SETTLE_TIMEOUT_S = 60.0


def parse_counts(specs: list[str]) -> dict[str, int]:
    """``["caption=3", "moderation=2"]`` as ``{"caption": 3, "moderation": 2}``; ValueError on anything else."""
    counts: dict[str, int] = {}
    for spec in specs:
        name, _, count = spec.partition("=")
        if name not in SERVICE_NAMES:
            raise ValueError(f"scale takes <service>=<replicas> with a service of {', '.join(SERVICE_NAMES)}; got {spec!r}")
        if not count.isdigit():
            raise ValueError(f"replicas of {name} must be a whole number >= 0; got {spec!r}")
        if name in counts:
            raise ValueError(f"{name} is named twice")
        counts[name] = int(count)
    if not counts:
        raise ValueError("name at least one <service>=<replicas>, e.g. caption=3")
    return counts


def replica(config: InfraConfig, name: str, index: int) -> PipelineService:
    """Replica ``index`` of service ``name`` (0: the service itself)."""
    return PipelineService(config, name, replica=index)


def replicas(config: InfraConfig, name: str) -> list[PipelineService]:
    """The replicas r > 0 of ``name`` that were asked for or still have a pid file, lowest first."""
    asked = set(range(1, _recorded(config).get(name, 1)))
    suffixes = (path.parent.name.removeprefix(f"{name}-") for path in config.state_dir.glob(f"{name}-*/{name}-*.pid"))
    running = {int(suffix) for suffix in suffixes if suffix.isdigit() and int(suffix) > 0}
    return [replica(config, name, index) for index in sorted(asked | running)]


def forget(config: InfraConfig, name: str) -> None:
    """Drop the recorded count of ``name`` (after ``down``: ``up`` starts replica 0 alone)."""
    remember(config, name, 1)


def group_id(name: str) -> str:
    """The consumer group of service ``name``: ``CAPTIONING_<NAME>_GROUP_ID``, else its name."""
    return os.environ.get(f"CAPTIONING_{name.upper()}_GROUP_ID", "") or name


def input_partitions(kafka: KafkaSettings, name: str, timeout_s: float = 10) -> set[Position]:
    """Every partition of the topics service ``name`` consumes."""
    admin = AdminClient(kafka.client_config() | {"log_level": 0})
    topics = admin.list_topics(timeout=timeout_s).topics
    return {(topic, partition) for topic in StageTopics(name).inputs for partition in topics[topic].partitions}


def group_view(kafka: KafkaSettings, group: str, timeout_s: float = 10) -> tuple[str, GroupView]:
    """The group's state (``STABLE``, ``PREPARING_REBALANCING``...) and the partitions each client id owns, from the broker."""
    admin = AdminClient(kafka.client_config() | {"log_level": 0})
    description = admin.describe_consumer_groups([group], request_timeout=timeout_s)[group].result(timeout=timeout_s)
    view: GroupView = {}
    for member in description.members:
        owned = member.assignment.topic_partitions if member.assignment else []
        view.setdefault(member.client_id, set()).update((tp.topic, tp.partition) for tp in owned)
    return description.state.name, view


def settled(state: str, view: GroupView, partitions: set[Position], members: set[str], leased: bool) -> bool:
    """True when the group is stable, each partition has exactly one owner, and its members are ``members``
    (with a lease: one of them)."""
    owned = [position for positions in view.values() for position in positions]
    if state != "STABLE" or len(owned) != len(partitions) or set(owned) != partitions:
        return False
    return len(view) == 1 and set(view) <= members if leased else set(view) == members


def wait_settled(kafka: KafkaSettings, name: str, members: set[str], group: str = "", timeout_s: float = SETTLE_TIMEOUT_S) -> GroupView:
    """Wait until the group of ``name`` (or ``group``) has settled on ``members`` (twice in a row, a second apart); returns its view."""
    group, partitions = group or group_id(name), input_partitions(kafka, name)
    deadline, streak = time.monotonic() + timeout_s, 0
    while True:
        state, view = group_view(kafka, group)
        streak = streak + 1 if settled(state, view, partitions, members, name in LEASED) else 0
        if streak >= 2:
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"consumer group {group} did not settle on {sorted(members)} within {timeout_s:.0f}s: "
                               f"state {state}, members {describe(view) or 'none'}")
        time.sleep(1)


def describe(view: GroupView) -> str:
    """``caption images.uploaded[0,1] | caption-1 images.uploaded[2,3]``."""
    parts = []
    for client in sorted(view):
        topics: dict[str, list[int]] = {}
        for topic, partition in sorted(view[client]):
            topics.setdefault(topic, []).append(partition)
        owned = " ".join(f"{topic}[{','.join(map(str, numbers))}]" for topic, numbers in topics.items()) or "nothing"
        parts.append(f"{client} {owned}")
    return " | ".join(parts)


def scale(config: InfraConfig, counts: dict[str, int], log: Callable[[str], None] = print) -> None:
    """Bring each service to its count: stop surplus replicas highest first (SIGTERM: the in-flight batch is
    finished and committed), start missing ones; then wait for each group to settle and log who owns what."""
    for name, count in counts.items():
        partitions = input_partitions(config.kafka, name)
        log(f"{name}: {count} replica{'s' if count != 1 else ''} in consumer group {group_id(name)} ({len(partitions)} input partitions)")
        for surplus in reversed([r for r in [replica(config, name, 0), *replicas(config, name)] if r.replica >= count]):
            log(f"  {surplus.instance:14} {'stopped (SIGTERM)' if surplus.stop() else 'not running'}")
        remember(config, name, count)
        for index in range(count):
            member = replica(config, name, index)
            running = member.process.pid() is not None
            seconds = member.start()
            log(f"  {member.instance:14} {'already running' if running else f'started, ready in {seconds:.1f}s'} (port {member.port})")
        if count > len(partitions):
            log(f"  note: {count - len(partitions)} replica(s) beyond the {len(partitions)} partitions get none")
    for name, count in counts.items():
        if count:
            members = {replica(config, name, index).instance for index in range(count)}
            log(f"{name} group {group_id(name)}: {describe(wait_settled(config.kafka, name, members))}")


def _recorded(config: InfraConfig) -> dict[str, int]:
    try:
        return json.loads((config.state_dir / "replicas.json").read_text())
    except FileNotFoundError:
        return {}


def remember(config: InfraConfig, name: str, count: int) -> None:
    """Keep ``count`` for ``name`` (1, the default, is not kept)."""
    recorded = _recorded(config)
    counts = {service: n for service, n in recorded.items() if service != name} | ({name: count} if count != 1 else {})
    if counts == recorded:
        return
    config.state_dir.mkdir(parents=True, exist_ok=True)
    (config.state_dir / "replicas.json").write_text(json.dumps(counts, sort_keys=True) + "\n")
