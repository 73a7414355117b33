"""The indexing stage: approved verdicts from ``captions.moderated`` into the search index.

Only APPROVE verdicts are indexed; a later REVIEW or REJECT verdict (a reviewer's
decision) removes an indexed image again. Each batch is one upsert keyed by image
id, so a replay can never create a second row; an image whose ``index`` record
already names the same verdict is skipped altogether (no write, no second
``index.updated`` event).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone

from confluent_kafka import Message

from captioning_common.events import EnvelopeError, decode_expected, iso, timestamp_now
from captioning_common.kafka.producer import EventProducer
from captioning_common.metrics import PipelineMetrics
from captioning_common.records import ImageRecords
from captioning_common.stage import DeadLetters
from captioning_events.v1.common_pb2 import DetectedObjects, ImageTag
from captioning_events.v1.index_pb2 import IndexOperation, IndexUpdated
from captioning_events.v1.moderation_pb2 import ModerationVerdict, Verdict
from services.indexing.index_store import CaptionIndex, IndexEntry

log = logging.getLogger(__name__)

INPUT_TOPIC = "captions.moderated"
OUTPUT_TOPIC = "index.updated"


class IndexingWorker:
    """Upserts each batch of approved images and announces them on ``index.updated``."""

    def __init__(self, index: CaptionIndex, records: ImageRecords, producer: EventProducer, metrics: PipelineMetrics, io_concurrency: int = 8) -> None:
        self.index = index
        self._pool = ThreadPoolExecutor(io_concurrency, thread_name_prefix="index-io")
        self.records = records
        self.producer = producer
        self.metrics = metrics
        self.dead_letters = DeadLetters("indexing", producer, records, metrics)

    def handle(self, batch: list[Message]) -> None:
        """Index a batch; returns once the index commit and every event are done, raises on transient failures."""
        self.metrics.observe_batch(len(batch))
        pending: list[Future] = []
        entries: dict[str, tuple[IndexEntry, str]] = {}
        removals: set[str] = set()
        verdicts = []
        for record in batch:
            try:
                verdicts.append((record, decode_expected(record.headers(), record.value(), ModerationVerdict)))
            except EnvelopeError as exc:
                pending.append(self.dead_letters.send(record, "invalid_event", str(exc)))
        image_ids = sorted({verdict.image_id for _, verdict in verdicts})
        index_records = dict(zip(image_ids, self._pool.map(lambda image_id: self.records.get(image_id, "index"), image_ids)))
        for record, verdict in verdicts:
            indexed = index_records[verdict.image_id]
            if verdict.verdict != Verdict.VERDICT_APPROVE:
                entries.pop(verdict.image_id, None)  # the latest verdict of an image wins
                if indexed is not None:
                    removals.add(verdict.image_id)
                self.metrics.message(record.topic(), "not_approved")
                continue
            moderated_at = iso(verdict.moderated_at)
            if indexed is not None and indexed.get("moderated_at") == moderated_at:
                self.metrics.message(record.topic(), "already_indexed")
                continue
            if not any(caption.text for caption in verdict.captions):
                pending.append(self.dead_letters.send(record, "no_caption", "an approved verdict without any caption cannot be indexed"))
                continue
            removals.discard(verdict.image_id)
            entries[verdict.image_id] = (entry_of(verdict), moderated_at)
        if entries:
            with self.metrics.time_stage("index_upsert"):
                version = self.index.upsert([entry for entry, _ in entries.values()])
            indexed_at = timestamp_now()
            marks = {
                image_id: {"index": self.index.settings.table, "index_version": version, "moderated_at": moderated_at, "indexed_at": iso(indexed_at)}
                for image_id, (_, moderated_at) in entries.items()
            }
            list(self._pool.map(lambda item: self.records.put(item[0], "index", item[1]), marks.items()))
            pending += self._announce(list(entries), IndexOperation.INDEX_OPERATION_UPSERT, version, "indexed")
        if removals:
            pending += self._remove(sorted(removals))
        for future in pending:
            future.result()

    def _remove(self, image_ids: list[str]) -> list[Future]:
        with self.metrics.time_stage("index_delete"):
            version = self.index.delete(image_ids)
        list(self._pool.map(lambda image_id: self.records.delete(image_id, "index"), image_ids))
        return self._announce(image_ids, IndexOperation.INDEX_OPERATION_DELETE, version, "removed")

    def _announce(self, image_ids: list[str], operation: IndexOperation.ValueType, version: int, outcome: str) -> list[Future]:
        at = timestamp_now()
        futures = []
        for image_id in image_ids:
            event = IndexUpdated(image_id=image_id, index_name=self.index.settings.table, operation=operation, index_version=version, indexed_at=at)
            futures.append(self.producer.produce(OUTPUT_TOPIC, event, key=image_id))
            self.metrics.message(INPUT_TOPIC, outcome)
        return futures


def entry_of(verdict: ModerationVerdict) -> IndexEntry:
    """The index entry of an approved verdict (captions as released by moderation).

    Tags and objects are indexed by their English and Korean names, text lines as read.
    """
    by_language = {caption.language: caption for caption in verdict.captions}
    keywords: list[str] = []
    hashtags: list[str] = []
    for caption in verdict.captions:
        keywords += [k for k in caption.keywords if k not in keywords]
        hashtags += [h for h in caption.hashtags if h not in hashtags]
    return IndexEntry(
        image_id=verdict.image_id,
        image_bucket=verdict.image.bucket,
        image_key=verdict.image.key,
        caption_model=f"{verdict.caption_model.name}:{verdict.caption_model.version}",
        caption_en=by_language["en"].text if "en" in by_language else "",
        caption_ko=by_language["ko"].text if "ko" in by_language else "",
        keywords=keywords,
        hashtags=hashtags,
        tags=_names(verdict.tags),
        objects=_names(verdict.objects),
        text=[line.text for line in verdict.text_lines if line.text.strip()],
        indexed_at=datetime.now(timezone.utc),
    )


def _names(labelled: Iterable[ImageTag | DetectedObjects]) -> list[str]:
    """English then Korean name of each item, without repeats or blanks."""
    return list(dict.fromkeys(name for item in labelled for name in (item.label, item.label_ko) if name))

