"""`python -m localinfra scale`: replicas of a service share its partitions, and losing one loses nothing.

A pipeline of its own (state directory, ports, consumer groups, bucket and index),
started by ``scale ingest=1 caption=3 moderation=1 indexing=1`` against the test
session's Kafka, MinIO and Triton. Its groups start at the end of their topics, so
they see only this module's images. Who owns which partition is read from the
broker (``describe_consumer_groups``), each replica naming itself by ``client.id``.
"""

from __future__ import annotations

import os
import signal
import zlib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from captioning_common.kafka.topics import StageTopics
from services.ingest.validation import image_id_of
from captioning_common.storage import ObjectStore
from localinfra.pipeline import SERVICE_NAMES, PipelineService
from localinfra.scaling import GroupView, describe, wait_settled
from localinfra.settings import InfraConfig, LocalInfraSettings, free_port
from tests.conftest import REPO_ROOT
from tests.integration.pipeline_client import end_offsets, read_since, scene_images, upload_all, wait_for

TAG = "scale-out"  # salts this module's uploads: ids no other test module shares

CAPTION = "caption"
# The session's pipeline reads the same topics and indexes these images too: the module's
# indexing writes a table of its own name, and only its index.updated events are counted.
TABLE = "captions_v2_scale"
FIRST, AFTER_KILL, ON_VICTIM = 12, 12, 4  # images sent before and after the kill; of the latter, how many on the victim's partitions
POOL = 72  # generated images the ones sent after the kill are picked from (fewer than 4 of 60 on 2 of 6 partitions: p < 1e-6)


@dataclass
class ScaledPipeline:
    """The module's pipeline: the environment its CLI calls and services run with."""

    env: dict[str, str]
    config: InfraConfig
    started: str

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.env['CAPTIONING_INGEST_PORT']}"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.env["CAPTIONING_API_KEYS"]}

    @property
    def group(self) -> str:
        return self.env["CAPTIONING_CAPTION_GROUP_ID"]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """``python -m localinfra ...`` with the module's environment."""
        return subprocess.run([sys.executable, "-m", "localinfra", *args], cwd=REPO_ROOT, env=os.environ | self.env,
                              capture_output=True, text=True, timeout=240)

    def caption(self, instance: str) -> PipelineService:
        """The caption replica named ``instance`` (``caption`` or ``caption-<r>``)."""
        index = int(instance.rpartition("-")[2]) if "-" in instance else 0
        return PipelineService(self.config, CAPTION, env=self.env, replica=index)


def start_groups_at_the_end(kafka, env: dict[str, str]) -> None:
    """Commit the end of every input topic for the module's (empty) groups: they see only what comes next."""
    admin = AdminClient(kafka.client_config() | {"log_level": 0})
    for name in SERVICE_NAMES:
        group = env[f"CAPTIONING_{name.upper()}_GROUP_ID"]
        offsets = [TopicPartition(topic, partition, high) for topic in StageTopics(name).inputs for partition, high in end_offsets(kafka, topic).items()]
        admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)])[group].result(timeout=30)


@pytest.fixture(scope="module")
def scaled(kafka, s3, triton, tmp_path_factory) -> Iterator[ScaledPipeline]:
    state = tmp_path_factory.mktemp("scale") / "state"
    bucket = f"{s3.bucket}-scale"
    ObjectStore(s3.model_copy(update={"bucket": bucket})).ensure_bucket()
    index_prefix = f"index-{os.urandom(4).hex()}"
    env = {
        "CAPTIONING_LOCAL_STATE_DIR": str(state),
        "CAPTIONING_S3_BUCKET": bucket,
        "CAPTIONING_INDEXING_INDEX_PREFIX": index_prefix,
        "CAPTIONING_INDEXING_TABLE": TABLE,
        "CAPTIONING_API_KEYS": "scale-key",
        "CAPTIONING_REVIEWER_KEYS": "scale-reviewer=scale-reviewer-key",
        "CAPTIONING_REVIEW_SIGNING_KEY": os.urandom(16).hex(),
        "CAPTIONING_KAFKA_SESSION_TIMEOUT_MS": "6000",  # the broker's minimum: a killed member is noticed sooner
    }
    for name in SERVICE_NAMES:
        env[f"CAPTIONING_{name.upper()}_PORT"] = str(free_port())
        env[f"CAPTIONING_{name.upper()}_GROUP_ID"] = f"scale-test-{name}"
    start_groups_at_the_end(kafka, env)
    running = ScaledPipeline(env, InfraConfig(local=LocalInfraSettings(state_dir=state), kafka=kafka, s3=s3, triton=triton), "")
    try:
        began = time.monotonic()
        result = running.cli("scale", "ingest=1", f"{CAPTION}=3", "moderation=1", "indexing=1")
        assert result.returncode == 0, result.stdout + result.stderr
        running.started = result.stdout
        print(f"scale ingest=1 caption=3 moderation=1 indexing=1: {time.monotonic() - began:.1f}s\n{result.stdout}")
        yield running
    finally:
        result = running.cli("down", *SERVICE_NAMES)
        left = sorted(path.name for path in state.glob("*/*.pid"))
        store = ObjectStore(s3.model_copy(update={"bucket": bucket}))
        for item in list(store.list(index_prefix + "/")):
            store.delete(item.key)
        assert result.returncode == 0 and not left, result.stdout + result.stderr + f"\nstill running: {left}"


def handled(pipeline: ScaledPipeline, instance: str) -> float:
    """Messages of images.uploaded the replica has handled (any outcome), from its /metrics."""
    return sum(sample.value for sample in metric_samples(pipeline, instance, "captioning_messages_total") if sample.labels["topic"] == "images.uploaded")


def lag_partitions(pipeline: ScaledPipeline, instance: str) -> set[tuple[str, int]]:
    """The partitions the replica publishes ``captioning_consumer_lag`` for."""
    return {(s.labels["topic"], int(s.labels["partition"])) for s in metric_samples(pipeline, instance, "captioning_consumer_lag")}


def metric_samples(pipeline: ScaledPipeline, instance: str, name: str) -> list:
    response = requests.get(f"http://127.0.0.1:{pipeline.caption(instance).port}/metrics", timeout=10)
    response.raise_for_status()
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples if sample.name == name]


def partition_of(data: bytes, partitions: int = 6) -> int:
    """The partition of images.uploaded an image's event goes to: librdkafka's default partitioner, CRC32 of the key (its id)."""
    return zlib.crc32(image_id_of(data).encode()) % partitions


def assert_spread(view: GroupView, members: set[str]) -> None:
    """Every partition of images.uploaded has one owner among ``members``, each member about as many as the others."""
    owned = [position for positions in view.values() for position in positions]
    assert set(view) == members, view
    assert sorted(owned) == [("images.uploaded", p) for p in range(6)], view
    sizes = [len(positions) for positions in view.values()]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1, view


def test_three_caption_replicas_share_the_partitions_and_a_killed_one_loses_nothing(scaled: ScaledPipeline, kafka) -> None:
    members = {CAPTION, f"{CAPTION}-1", f"{CAPTION}-2"}
    view = wait_settled(kafka, CAPTION, members, scaled.group)
    assert_spread(view, members)
    assert f"{CAPTION}-2 images.uploaded[" in scaled.started  # the CLI printed the broker's view too

    starts = {topic: end_offsets(kafka, topic) for topic in ("images.uploaded", "captions.generated", "index.updated")}
    pool = scene_images(POOL, seed=5005, tag=TAG)
    first = upload_all(scaled, pool[:FIRST])
    assert [r.status_code for r in first] == [202] * len(first), [r.text for r in first if r.status_code != 202][:3]

    # SIGKILL the busiest replica as soon as any has handled a message of the first half.
    deadline = time.monotonic() + 60
    while not any((counts := {member: handled(scaled, member) for member in members}).values()):
        assert time.monotonic() < deadline, "no caption replica handled a message within 60s"
        time.sleep(0.2)
    victim = max(counts, key=counts.get)
    process = scaled.caption(victim).process
    os.killpg(process.pid(), signal.SIGKILL)
    while process.pid() is not None:
        time.sleep(0.1)
    killed_at = time.monotonic()
    print(f"SIGKILLed {victim} (owning {sorted(view[victim])}) after {counts[victim]:.0f} messages; replicas had handled {counts}")

    # Images after the kill go to every partition, some to the dead replica's: those wait for the group to give them to a survivor.
    orphaned = [data for data in pool[FIRST:] if ("images.uploaded", partition_of(data)) in view[victim]][:ON_VICTIM]
    others = [data for data in pool[FIRST:] if ("images.uploaded", partition_of(data)) not in view[victim]][: AFTER_KILL - ON_VICTIM]
    assert len(orphaned) == ON_VICTIM
    second = upload_all(scaled, orphaned + others)
    assert [r.status_code for r in second] == [202] * len(second), [r.text for r in second if r.status_code != 202][:3]
    sent = pool[:FIRST] + orphaned + others
    ids = [r.json()["id"] for r in first + second]
    ends = end_offsets(kafka, "images.uploaded")
    arrived = {p: ends[p] - starts["images.uploaded"].get(p, 0) for p in ends if ends[p] > starts["images.uploaded"].get(p, 0)}
    assert arrived == Counter(partition_of(data) for data in sent), "images.uploaded is not partitioned by CRC32 of the image id (or another producer wrote to it)"

    statuses = wait_for(scaled, ids, timeout_s=120)
    print(f"every image final {time.monotonic() - killed_at:.1f}s after the kill")
    assert {i: (s["status"], s["verdict"]) for i, s in statuses.items()} == {i: ("indexed", "approve") for i in ids}
    captioned = Counter(key for key, _ in read_since(kafka, "captions.generated", starts["captions.generated"]))
    assert set(ids) <= set(captioned), sorted(set(ids) - set(captioned))
    print(f"captions.generated: {sum(captioned[i] for i in ids)} events for {len(ids)} images (repeats replay the uncommitted batch)")
    indexed = Counter(key for key, event in read_since(kafka, "index.updated", starts["index.updated"]) if event and event.index_name == TABLE)
    assert {i: indexed[i] for i in ids} == {i: 1 for i in ids}

    survivors = members - {victim}
    assert_spread(wait_settled(kafka, CAPTION, survivors, scaled.group), survivors)
    status = scaled.cli("status", CAPTION)
    states = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()}
    assert status.returncode == 1 and states == {member: "healthy" for member in survivors} | {victim: "stopped"}, status.stdout


def test_scale_is_idempotent_scales_down_the_highest_replica_and_down_stops_them_all(scaled: ScaledPipeline, kafka) -> None:
    members = {CAPTION, f"{CAPTION}-1", f"{CAPTION}-2"}
    published = {member: lag_partitions(scaled, member) for member in members if scaled.caption(member).process.pid()}
    restored = scaled.cli("scale", f"{CAPTION}=3")  # starts whichever replica is missing
    assert restored.returncode == 0, restored.stdout + restored.stderr
    again = scaled.cli("scale", f"{CAPTION}=3")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("already running") == 3 and "started" not in again.stdout, again.stdout
    view = wait_settled(kafka, CAPTION, members, scaled.group)
    assert_spread(view, members)
    print(f"{sum(len(partitions - view[member]) for member, partitions in published.items())} partitions with published lag changed owner")
    # A replica publishes lag only for partitions it owns now, not for those the rebalance took away.
    deadline = time.monotonic() + 15
    while any(lag_partitions(scaled, member) - view[member] for member in members):
        assert time.monotonic() < deadline, {member: lag_partitions(scaled, member) - view[member] for member in members}
        time.sleep(0.5)

    down_to_two = scaled.cli("scale", f"{CAPTION}=2")
    assert down_to_two.returncode == 0, down_to_two.stdout + down_to_two.stderr
    assert f"{CAPTION}-2" in down_to_two.stdout and "stopped (SIGTERM)" in down_to_two.stdout, down_to_two.stdout
    survivors = {CAPTION, f"{CAPTION}-1"}
    assert_spread(wait_settled(kafka, CAPTION, survivors, scaled.group), survivors)
    status = scaled.cli("status", CAPTION)
    assert status.returncode == 0 and [line.split()[0] for line in status.stdout.splitlines()] == [CAPTION, f"{CAPTION}-1"], status.stdout

    stopped = scaled.cli("down", CAPTION)
    assert stopped.stdout.splitlines() == [f"{CAPTION}-1: stopped", f"{CAPTION}: stopped"], stopped.stdout
    after = scaled.cli("status", CAPTION)
    assert [line.split()[:2] for line in after.stdout.splitlines()] == [[CAPTION, "stopped"]], after.stdout
    assert not list(Path(scaled.env["CAPTIONING_LOCAL_STATE_DIR"]).glob(f"{CAPTION}*/*.pid"))


def test_two_moderation_replicas_each_own_half_of_each_input_topic(scaled: ScaledPipeline, kafka) -> None:
    """Moderation reads two topics: each replica gets its share of each, not one whole topic each."""
    members = {"moderation", "moderation-1"}
    result = scaled.cli("scale", "moderation=2")
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        view = wait_settled(kafka, "moderation", members, scaled.env["CAPTIONING_MODERATION_GROUP_ID"])
        for topic in StageTopics("moderation").inputs:
            shares = sorted(sum(1 for owned, _ in positions if owned == topic) for positions in view.values())
            assert shares == [3, 3], f"{topic}: {describe(view)}"
    finally:
        assert scaled.cli("scale", "moderation=1").returncode == 0
