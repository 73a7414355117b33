"""The indexing stage: approved verdicts into the search index, announced on ``index.updated``.

Only APPROVE verdicts are indexed; any other verdict removes the image from the
table (a no-op when it is absent, so a crash between an upsert and its mark can
never leave a rejected image searchable). Each batch is one upsert keyed by image
id, so a replay never creates a second row. The order of effects per batch: the
table written (here), then every ``index.updated`` acknowledged, then the
``index`` records (completion marks) written or removed (by the runtime). An
image whose mark already names the same verdict is skipped (no second event).
After each upsert the new rows are folded into the indexes when due, beside the
writer (``services.indexing.folding``).
Only the holder of the writer lease runs this stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Protocol

from captioning_common.events import iso, timestamp_now
from captioning_common.kafka.topics import StageTopics
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import Check
from captioning_common.records import ImageRecords
from captioning_common.stage import Emit, Inbound, Outcome, RecordChange
from captioning_events.v1.common_pb2 import DetectedObjects, ImageTag
from captioning_events.v1.index_pb2 import IndexOperation, IndexUpdated
from captioning_events.v1.moderation_pb2 import ModerationVerdict, Verdict
from services.indexing.index_store import INDEXED_LANGUAGES, CaptionIndex, IndexEntry


class Folds(Protocol):
    """Folds the index's new rows into its indexes when due, without holding up the caller."""

    def ask(self) -> None: ...


class IndexingStage:
    """Upserts each batch of approved images and removes the others."""

    name = "indexing"

    def __init__(
        self,
        index: CaptionIndex,
        folds: Folds,
        records: ImageRecords,
        topics: StageTopics,
        metrics: PipelineMetrics,
        writer_lease: Check,
        io_concurrency: int,
    ) -> None:
        self.index = index
        self._folds = folds
        self._reads = ThreadPoolExecutor(io_concurrency, thread_name_prefix="index-marks")
        self.records = records
        self.metrics = metrics
        self.output = topics.output(IndexUpdated)
        self._writer_lease = writer_lease

    def dependencies(self) -> dict[str, Check]:
        """The bucket (records and table) and the writer lease."""
        return {"s3": self.records.store.reachable, "writer_lease": self._writer_lease}

    def handle(self, batch: Sequence[Inbound[ModerationVerdict]]) -> list[Outcome]:
        """One outcome per verdict; the latest verdict of an image in the batch decides, the earlier ones are superseded."""
        outcomes = [Outcome(result="superseded") for _ in batch]
        latest = {inbound.image_id: index for index, inbound in enumerate(batch)}
        marks = dict(zip(latest, self._reads.map(lambda image_id: self.records.get(image_id, "index"), latest)))
        upserts: dict[str, tuple[int, IndexEntry]] = {}
        removals: list[tuple[int, str]] = []
        for image_id, index in latest.items():
            verdict = batch[index].event
            if verdict.verdict != Verdict.VERDICT_APPROVE:
                removals.append((index, image_id))
                continue
            unknown = sorted({c.language for c in verdict.captions} - set(INDEXED_LANGUAGES))
            if unknown:
                outcomes[index] = Outcome.failed("unsupported_language", f"the index holds {', '.join(INDEXED_LANGUAGES)} captions, not {', '.join(unknown)}")
            elif not any(caption.text for caption in verdict.captions):
                outcomes[index] = Outcome.failed("no_caption", "an approved verdict without any caption cannot be indexed")
            elif (marks[image_id] or {}).get("moderated_at") == iso(verdict.moderated_at):
                outcomes[index] = Outcome(result="already_indexed")
            else:
                upserts[image_id] = (index, entry_of(verdict))
        if upserts:
            with self.metrics.time_stage("index_upsert"):
                version = self.index.upsert([entry for _, entry in upserts.values()])
            self._folds.ask()
            for image_id, (index, _) in upserts.items():
                mark = {"index": self.index.settings.table, "index_version": version, "moderated_at": iso(batch[index].event.moderated_at), "indexed_at": iso(timestamp_now())}
                outcomes[index] = Outcome(events=[self._announce(image_id, IndexOperation.INDEX_OPERATION_UPSERT, version)], marks=[RecordChange(image_id, "index", mark)], result="indexed")
        if removals:
            with self.metrics.time_stage("index_delete"):
                version = self.index.delete([image_id for _, image_id in removals])
            for index, image_id in removals:
                was_indexed = marks[image_id] is not None
                events = [self._announce(image_id, IndexOperation.INDEX_OPERATION_DELETE, version)] if was_indexed else []
                outcomes[index] = Outcome(events=events, marks=[RecordChange(image_id, "index", None)], result="removed" if was_indexed else "not_approved")
        return outcomes

    def _announce(self, image_id: str, operation: IndexOperation.ValueType, version: int) -> Emit:
        event = IndexUpdated(image_id=image_id, index_name=self.index.settings.table, operation=operation, index_version=version, indexed_at=timestamp_now())
        return Emit(self.output, event, image_id)


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

