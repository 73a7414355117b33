"""The caption search index: one LanceDB table in the bucket, one row per image.

Search is hybrid: BM25 full-text search over both captions, keywords and hashtags,
cosine vector search over a sentence embedding, and two rankings of those candidates:
captions containing the whole query, and keywords the query names as a phrase; all
fused by reciprocal rank over ``image_id`` (earlier rankings win ties).
Rows written after the full-text index was last built are still searched (LanceDB
scans unindexed rows); ``upsert`` folds them into the index once there are
``refresh_unindexed_rows`` of them, which bounds the cost of that scan.

One writer thread and any number of reader threads may share a ``CaptionIndex``.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.expr import col, lit
from lancedb.index import FTS

from captioner.vocabulary import LANGUAGES
from captioning_common.settings import S3Settings
from services.indexing.settings import IndexingSettings

log = logging.getLogger(__name__)

FTS_INDEX = "text_fts"
# Splits on whitespace and punctuation, so space-separated Korean words are tokens;
# English stemming and stop words leave Hangul tokens untouched.
FTS_CONFIG = FTS(base_tokenizer="simple", language="English", stem=True, remove_stop_words=True)
REFRESH_UNINDEXED_ROWS = 1000
RRF_K = 60
CANDIDATES = 50  # rows each ranking contributes to the fusion
_HIT_COLUMNS = ["image_id", "caption_en", "caption_ko", "keywords", "image_bucket", "image_key"]


class TextEmbedder(Protocol):
    """What the index needs of an embedding model."""

    dimension: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class IndexEntry:
    """The searchable record of one image."""

    image_id: str
    image_bucket: str
    image_key: str
    caption_model: str
    caption_en: str = ""
    caption_ko: str = ""
    keywords: list[str] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    indexed_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True)
class SearchHit:
    """One search result; ``score`` is the reciprocal-rank fusion score (higher is better)."""

    image_id: str
    caption: str
    keywords: list[str]
    score: float
    image_bucket: str
    image_key: str


def lance_storage_options(s3: S3Settings) -> dict[str, str]:
    """LanceDB object-store options for the configured S3 endpoint."""
    options = {
        "aws_access_key_id": s3.access_key_id,
        "aws_secret_access_key": s3.secret_access_key.get_secret_value(),
        "aws_endpoint": s3.endpoint_url,
        "aws_region": s3.region,
    }
    if s3.endpoint_url.startswith("http://"):
        options["allow_http"] = "true"
    return options


def index_schema(dimension: int) -> pa.Schema:
    """Arrow schema of the index table."""
    return pa.schema(
        [
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("caption_en", pa.string()),
            pa.field("caption_ko", pa.string()),
            pa.field("keywords", pa.list_(pa.string())),
            pa.field("hashtags", pa.list_(pa.string())),
            pa.field("text", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
            pa.field("image_bucket", pa.string()),
            pa.field("image_key", pa.string()),
            pa.field("caption_model", pa.string()),
            pa.field("indexed_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def document_text(entry: IndexEntry) -> str:
    """The full-text document of an entry: both captions, keywords and hashtags."""
    return "\n".join(part for part in (entry.caption_en, entry.caption_ko, *entry.keywords, *entry.hashtags) if part)


def embedding_text(entry: IndexEntry) -> str:
    """What is embedded: the English caption (else the Korean one) and the keywords."""
    caption = entry.caption_en or entry.caption_ko
    return f"{caption}. {', '.join(entry.keywords)}" if entry.keywords else caption


def phrase_ranking(query: str, rows: list[dict]) -> list[dict]:
    """Rows whose caption (either language) contains the whole query, shortest caption first."""
    text = " ".join(query.lower().split())
    hits = []
    for row in rows:
        lengths = [len(caption) for caption in (row["caption_en"], row["caption_ko"]) if text in " ".join(caption.lower().split())]
        if lengths:
            hits.append((min(lengths), row))
    return [row for _, row in sorted(hits, key=lambda pair: pair[0])]


def keyword_ranking(query: str, rows: list[dict]) -> list[dict]:
    """Rows with keywords the query names as a phrase ("red circle" in "two red circles"), most first.

    This is the tag search of the fusion: it lifts an image tagged exactly as asked above
    one whose caption merely contains the same words in other places.
    """
    text = " ".join(query.lower().split())
    counts = []
    for row in rows:
        named = sum(1 for keyword in row["keywords"] if re.search(rf"(?<!\w){re.escape(keyword.lower())}(?:e?s)?(?!\w)", text))
        if named:
            counts.append((named, row))
    return [row for _, row in sorted(counts, key=lambda pair: pair[0], reverse=True)]


def reciprocal_rank_fusion(rankings: list[list[dict]], k: int = RRF_K) -> list[tuple[dict, float]]:
    """Rows of several rankings by the sum of ``1 / (k + rank)`` over the rankings naming their ``image_id``.

    Rows are matched by ``image_id``, so a row rewritten between two rankings counts once.
    Equal scores keep the order of first appearance: earlier rankings win ties.
    """
    scores: dict[str, float] = {}
    rows: dict[str, dict] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for row in ranking:
            image_id = row["image_id"]
            if image_id in seen:
                continue
            seen.add(image_id)
            scores[image_id] = scores.get(image_id, 0.0) + 1.0 / (k + len(seen))
            rows.setdefault(image_id, row)
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)
    return [(rows[image_id], scores[image_id]) for image_id in ranked]


class CaptionIndex:
    """The caption table under ``s3://<bucket>/<index_prefix>``, created with its full-text index when missing."""

    def __init__(
        self,
        s3: S3Settings,
        settings: IndexingSettings,
        embedder: TextEmbedder,
        refresh_unindexed_rows: int = REFRESH_UNINDEXED_ROWS,
    ) -> None:
        self.settings = settings
        self.uri = f"s3://{s3.bucket}/{settings.index_prefix.strip('/')}"
        self._embedder = embedder
        self._refresh_unindexed_rows = refresh_unindexed_rows
        self._schema = index_schema(embedder.dimension)
        self._write_lock = threading.Lock()
        db = lancedb.connect(self.uri, storage_options=lance_storage_options(s3))
        self._table = db.create_table(settings.table, schema=self._schema, exist_ok=True)
        size = self._table.schema.field("vector").type.list_size
        if size != embedder.dimension:
            raise ValueError(f"index {self.uri}/{settings.table} holds {size}-dim vectors, the embedder gives {embedder.dimension}")
        if not any(index.name == FTS_INDEX for index in self._table.list_indices()):
            self._table.create_index("text", config=FTS_CONFIG, name=FTS_INDEX)
            log.info("created full-text index", extra={"index_uri": self.uri, "table": settings.table})

    def upsert(self, entries: list[IndexEntry]) -> int:
        """Insert or replace entries by ``image_id`` in one commit; returns the table version written.

        A replayed entry replaces its row, never duplicates it; of several entries with
        one ``image_id`` the last wins. An empty list writes nothing.
        """
        latest = {entry.image_id: entry for entry in entries}
        for image_id, entry in latest.items():
            if not image_id:
                raise ValueError("image_id must not be empty")
            if not (entry.caption_en or entry.caption_ko):
                raise ValueError(f"entry {image_id} has no caption")
        with self._write_lock:
            if not latest:
                return self._table.version
            rows = self._rows(list(latest.values()))
            result = self._table.merge_insert("image_id").when_matched_update_all().when_not_matched_insert_all().execute(rows)
            self._refresh_fts_if_due()
            return result.version

    def delete(self, image_ids: list[str]) -> int:
        """Remove the rows of ``image_ids`` in one commit (absent ids are ignored); returns the table version."""
        with self._write_lock:
            if not image_ids:
                return self._table.version
            quoted = ", ".join("'" + image_id.replace("'", "''") + "'" for image_id in image_ids)
            self._table.delete(f"image_id IN ({quoted})")
            return self._table.version

    def get(self, image_id: str) -> IndexEntry | None:
        """The stored entry of ``image_id``, or None."""
        rows = self._table.search().where(col("image_id") == lit(image_id)).limit(1).to_arrow().to_pylist()
        if not rows:
            return None
        row = rows[0]
        return IndexEntry(
            image_id=row["image_id"],
            image_bucket=row["image_bucket"],
            image_key=row["image_key"],
            caption_model=row["caption_model"],
            caption_en=row["caption_en"],
            caption_ko=row["caption_ko"],
            keywords=row["keywords"],
            hashtags=row["hashtags"],
            indexed_at=row["indexed_at"],
        )

    def count(self) -> int:
        """Number of indexed images."""
        return self._table.count_rows()

    def unindexed_rows(self) -> int:
        """Rows not yet in the full-text index; searches still find them, by a slower scan."""
        stats = self._table.index_stats(FTS_INDEX)
        return stats.num_unindexed_rows if stats else 0

    def search(self, query: str, lang: str, limit: int) -> list[SearchHit]:
        """Best ``limit`` images for ``query`` by full-text and vector rank; captions in ``lang``, else the other language."""
        if lang not in LANGUAGES:
            raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
        if not 1 <= limit <= self.settings.search_limit_max:
            raise ValueError(f"limit must be between 1 and {self.settings.search_limit_max}, got {limit}")
        query = query.strip()
        if not query:
            raise ValueError("query must not be empty")
        vector = self._embedder.encode([query])[0]
        candidates = max(limit, CANDIDATES)
        text_rows = (
            self._table.search(query, query_type="fts", fts_columns="text").select([*_HIT_COLUMNS, "_score"]).limit(candidates).to_list()
        )
        vector_rows = (
            self._table.search(vector, vector_column_name="vector")
            .distance_type("cosine")
            .select([*_HIT_COLUMNS, "_distance"])
            .limit(candidates)
            .to_list()
        )
        candidate_rows = text_rows + [row for row in vector_rows if row not in text_rows]
        rankings = [phrase_ranking(query, candidate_rows), keyword_ranking(query, candidate_rows), text_rows, vector_rows]
        other = "ko" if lang == "en" else "en"
        return [
            SearchHit(
                image_id=row["image_id"],
                caption=row[f"caption_{lang}"] or row[f"caption_{other}"],
                keywords=row["keywords"],
                score=score,
                image_bucket=row["image_bucket"],
                image_key=row["image_key"],
            )
            for row, score in reciprocal_rank_fusion(rankings)[:limit]
        ]

    def _rows(self, entries: list[IndexEntry]) -> pa.Table:
        vectors = self._embedder.encode([embedding_text(entry) for entry in entries])
        columns = {
            "image_id": [entry.image_id for entry in entries],
            "caption_en": [entry.caption_en for entry in entries],
            "caption_ko": [entry.caption_ko for entry in entries],
            "keywords": [list(entry.keywords) for entry in entries],
            "hashtags": [list(entry.hashtags) for entry in entries],
            "text": [document_text(entry) for entry in entries],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), self._embedder.dimension),
            "image_bucket": [entry.image_bucket for entry in entries],
            "image_key": [entry.image_key for entry in entries],
            "caption_model": [entry.caption_model for entry in entries],
            "indexed_at": [entry.indexed_at for entry in entries],
        }
        return pa.Table.from_pydict(columns, schema=self._schema)

    def _refresh_fts_if_due(self) -> None:
        unindexed = self.unindexed_rows()
        if unindexed >= self._refresh_unindexed_rows:
            self._table.optimize()
            log.info("folded %d rows into the full-text index", unindexed, extra={"table": self.settings.table})
