"""After the faults: wait until the pipeline drained, then check what must hold.

An image is final when its status is
- ``indexed`` with verdict ``approve``;
- ``failed`` with a failure naming its stage, code and reason; or
- ``moderated`` with verdict ``reject`` and at least one moderation reason.
Anything else (``received``, ``captioned``, ``moderated`` with ``approve`` or ``review``,
or no record at all) is not.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

import lancedb
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from captioning_common.kafka import watermarks
from captioning_common.kafka.reading import read_range
from captioning_common.settings import KafkaSettings, S3Settings
from captioning_events.v1.index_pb2 import IndexOperation, IndexUpdated
from localinfra.chaos.workload import RetryingClient
from services.indexing.index_store import lance_storage_options
from services.indexing.settings import IndexingSettings

INDEX_TOPIC = "index.updated"


def partition_lag(kafka: KafkaSettings, groups: dict[str, Iterable[str]], timeout_s: float = 10) -> list[dict]:
    """Per group and input partition: the committed offset, the high watermark and the lag (uncommitted: from the start)."""
    admin = AdminClient(kafka.client_config() | {"log_level": 0})
    consumer = Consumer(kafka.client_config() | {"group.id": f"chaos-lag-{uuid.uuid4()}", "log_level": 0})
    try:
        rows = []
        for group, topics in groups.items():
            partitions = [
                TopicPartition(topic, partition)
                for topic in topics
                for partition in admin.list_topics(topic, timeout=timeout_s).topics[topic].partitions
            ]
            request = [ConsumerGroupTopicPartitions(group, partitions)]
            for tp in admin.list_consumer_group_offsets(request)[group].result(timeout=timeout_s).topic_partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout_s)
                committed = tp.offset if tp.offset >= 0 else low
                rows.append({"group": group, "topic": tp.topic, "partition": tp.partition, "committed": tp.offset, "high": high, "lag": high - committed})
        return rows
    finally:
        consumer.close()


def group_lag(kafka: KafkaSettings, groups: dict[str, Iterable[str]], timeout_s: float = 10) -> dict[str, int]:
    """Messages behind the end of the input topics, per consumer group."""
    totals = {group: 0 for group in groups}
    for row in partition_lag(kafka, groups, timeout_s):
        totals[row["group"]] += row["lag"]
    return totals


def uncommitted_keys(kafka: KafkaSettings, row: dict, limit: int = 5, timeout_s: float = 15) -> list[str]:
    """Keys (image ids) of the first messages past a lagging partition's committed offset."""
    consumer = Consumer(kafka.client_config() | {"group.id": f"chaos-peek-{uuid.uuid4()}", "enable.auto.commit": False, "log_level": 0})
    keys: list[str] = []
    try:
        consumer.assign([TopicPartition(row["topic"], row["partition"], max(row["committed"], 0))])
        deadline = time.monotonic() + timeout_s
        while len(keys) < min(limit, row["lag"]) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                keys.append(f"{message.offset()}:{(message.key() or b'').decode(errors='replace')}")
    finally:
        consumer.close()
    return keys


def wait_drained(
    lag_of: Callable[[], dict[str, int]], busy: Callable[[], str], timeout_s: float, log=print, quiet_checks: int = 3
) -> tuple[bool, float, dict[str, int]]:
    """Poll until every group's lag is 0 and ``busy`` says nothing, ``quiet_checks`` times in a row.

    Returns (drained, seconds waited, the last lags).
    """
    started = time.monotonic()
    quiet, last, lags = 0, 0.0, {}
    while time.monotonic() - started < timeout_s:
        try:
            lags = lag_of()
            reason = busy()
        except Exception as exc:  # a broker still electing leaders: ask again
            lags, reason = {}, f"lag unknown ({type(exc).__name__}: {exc})"
        if not reason and lags and not any(lags.values()):
            quiet += 1
            if quiet >= quiet_checks:
                return True, time.monotonic() - started, lags
        else:
            quiet = 0
        if time.monotonic() - last > 15:
            log(f"draining: lag {lags} {reason}")
            last = time.monotonic()
        time.sleep(2)
    return False, time.monotonic() - started, lags


def final_kind(status: dict | None) -> str:
    """``indexed``, ``failed`` or ``rejected`` for a final status, else ``""``."""
    if status is None:
        return ""
    if status.get("status") == "indexed" and status.get("verdict") == "approve":
        return "indexed"
    failure = status.get("failure") or {}
    if status.get("status") == "failed" and all(failure.get(key) for key in ("stage", "code", "reason")):
        return "failed"
    if status.get("status") == "moderated" and status.get("verdict") == "reject" and status.get("moderation_reasons"):
        return "rejected"
    return ""


def read_statuses(client: RetryingClient, ingest_url: str, headers: dict[str, str], image_ids: Iterable[str]) -> dict[str, dict | None]:
    """``GET /v1/images/{id}`` of each image (None for a 404 or no answer)."""
    statuses: dict[str, dict | None] = {}
    for image_id in image_ids:
        response = client.call("GET", f"{ingest_url}/v1/images/{image_id}", headers=headers)
        statuses[image_id] = response.json() if response is not None and response.status_code == 200 else None
    return statuses


def index_rows(s3: S3Settings, settings: IndexingSettings) -> Counter:
    """Rows per image id in the LanceDB table (empty when the table was never created)."""
    db = lancedb.connect(f"s3://{s3.bucket}/{settings.index_prefix.strip('/')}", storage_options=lance_storage_options(s3))
    try:
        table = db.open_table(settings.table)
    except ValueError:
        return Counter()
    return Counter(table.to_arrow().column("image_id").to_pylist())


def index_events(kafka: KafkaSettings, timeout_s: float = 60) -> dict[str, list[str]]:
    """Every ``index.updated`` event from the start, as image id -> operations in order per partition."""
    consumer = Consumer(kafka.client_config() | {"group.id": f"chaos-index-{uuid.uuid4()}", "enable.auto.commit": False, "log_level": 0})
    operations: dict[str, list[str]] = defaultdict(list)
    try:
        marks = watermarks(consumer, INDEX_TOPIC)
        starts, ends = {p: low for p, (low, _) in marks.items()}, {p: high for p, (_, high) in marks.items()}
        for _, event in read_range(consumer, INDEX_TOPIC, starts, ends, idle_timeout_s=timeout_s):
            if isinstance(event, IndexUpdated):
                operations[event.image_id].append(IndexOperation.Name(event.operation).removeprefix("INDEX_OPERATION_"))
    finally:
        consumer.close()
    return operations
