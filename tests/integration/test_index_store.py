"""The caption index on the real S3 server: idempotent upserts, hybrid search in English and Korean, validation.

The photo cases check each path of the search on its own: BM25 over Korean morphemes,
tags, objects and text read in images, and vectors that cross between the languages.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from captioning_common.settings import S3Settings
from captioning_common.storage import ObjectStore
from services.indexing.embedder import Embedder
from services.indexing.index_store import FTS_INDEX, KEY_INDEX, CaptionIndex, IndexEntry, document_terms
from services.indexing.settings import IndexingSettings

pytestmark = pytest.mark.integration

COUNTS = [("one", "한"), ("two", "두"), ("three", "세")]
SIZES = [("small", "작은"), ("large", "큰")]
COLOURS = [("red", "빨간"), ("blue", "파란"), ("green", "초록색"), ("yellow", "노란"), ("orange", "주황색"), ("white", "흰색")]
SHAPES = [("circle", "원"), ("square", "사각형"), ("triangle", "삼각형")]
RELATIONS = [("above", "위에"), ("below", "아래에"), ("next to", "옆에")]
# Korean only, and the one row with a purple star.
STAR = IndexEntry(
    image_id="star",
    image_bucket="captioning",
    image_key="originals/star.png",
    caption_model="captioner:1",
    caption_ko="보라색 별 세 개가 있는 선화",
    keywords=["보라색 별", "선화"],
    hashtags=["#보라색별", "#선화"],
    tags=["line drawing", "선화"],
)


def _photo(image_id: str, **fields) -> IndexEntry:
    return IndexEntry(image_id=image_id, image_bucket="captioning", image_key=f"originals/{image_id}.jpg", caption_model="captioner:2", **fields)


# Photographs as the real-world captioner describes them; each names its subject in one language only.
PHOTOS = [
    _photo(
        "cat-en", caption_en="a photo of a tabby cat sleeping on a sofa", keywords=["tabby cat", "sofa"], tags=["tabby cat"], objects=["cat", "couch"]
    ),
    _photo("cat-ko", caption_ko="고양이 한 마리가 있는 사진", keywords=["고양이"]),
    _photo("cat-and-dog-ko", caption_ko="소파 위에서 자는 고양이와 강아지"),
    _photo("espresso-ko", caption_ko="나무 테이블 위의 에스프레소 한 잔"),
    _photo("motorcycle-en", caption_en="a photo of a red motorcycle parked on a street", objects=["motorcycle"]),
    _photo("shop-en", caption_en="a photo of a shop front", objects=["person"], text=["GRAND OPENING SALE", "OPEN 10AM"]),
    _photo("sign-ko", caption_ko="거리의 간판 사진", text=["할인 행사"]),
    _photo("street-en", caption_en="a photo of a city street", objects=["bicycle", "자전거", "person", "사람"]),
    _photo("lake-en", caption_en="a photo of a mountain lake at sunrise", tags=["lakeside", "호숫가"]),
    _photo("pasta-en", caption_en="a photo of a plate of pasta with tomato sauce", tags=["carbonara", "까르보나라"]),
    _photo("beach-ko", caption_ko="해변에서 뛰는 개 사진", objects=["dog", "개"]),
    _photo("astronaut-ko", caption_ko="우주복을 입은 우주비행사", tags=["space suit", "우주복"]),
]


class _OtherEmbedder:
    dimension = 384

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), self.dimension), dtype=np.float32) / np.sqrt(self.dimension)


def _caption(rng: random.Random) -> tuple[str, str, list[str]]:
    (count, count_ko), (size, size_ko), (colour, colour_ko), (shape, shape_ko) = (
        rng.choice(COUNTS), rng.choice(SIZES), rng.choice(COLOURS), rng.choice(SHAPES)
    )
    (other_size, other_size_ko), (other_colour, other_colour_ko), (other_shape, other_shape_ko) = (
        rng.choice(SIZES), rng.choice(COLOURS), rng.choice(SHAPES)
    )
    relation, relation_ko = rng.choice(RELATIONS)
    plural = "s" if count != "one" else ""
    en = f"{count} {size} {colour} {shape}{plural} {relation} a {other_size} {other_colour} {other_shape}"
    ko = f"{other_size_ko} {other_colour_ko} {other_shape_ko} {relation_ko} {size_ko} {colour_ko} {shape_ko} {count_ko} 개"
    keywords = [f"{colour} {shape}", f"{other_colour} {other_shape}", f"{colour_ko} {shape_ko}", f"{other_colour_ko} {other_shape_ko}"]
    return en, ko, keywords


def make_entries(n: int) -> list[IndexEntry]:
    """``n`` entries with distinct captions; every fifth is Korean only, the last is STAR."""
    rng = random.Random(7)
    entries: list[IndexEntry] = []
    seen: set[str] = set()
    while len(entries) < n - 1:
        en, ko, keywords = _caption(rng)
        if en in seen:
            continue
        seen.add(en)
        i = len(entries)
        entries.append(
            IndexEntry(
                image_id=f"img-{i:03d}",
                image_bucket="captioning",
                image_key=f"originals/{i:03d}.png",
                caption_model="captioner:1",
                caption_en="" if i % 5 == 4 else en,
                caption_ko=ko,
                keywords=keywords,
                hashtags=["#" + k.replace(" ", "") for k in keywords],
            )
        )
    return [*entries, STAR]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def make_index(s3: S3Settings, embedder: Embedder) -> Iterator[Callable[..., CaptionIndex]]:
    """Builds indexes under fresh prefixes and deletes their objects afterwards."""
    prefixes: list[str] = []

    def make(**settings) -> CaptionIndex:
        prefixes.append(f"test-index-{uuid.uuid4().hex}")
        return CaptionIndex(s3, IndexingSettings(index_prefix=prefixes[-1], **settings), embedder)

    yield make
    store = ObjectStore(s3)
    for prefix in prefixes:
        for obj in list(store.list(prefix + "/")):
            store.delete(obj.key)


@pytest.fixture(scope="module")
def entries() -> list[IndexEntry]:
    """70 entries: the first 60 written twice (the second time by a newer model), 10 only once."""
    first = make_entries(70)
    return [dataclasses.replace(e, caption_model="captioner:2") for e in first[:60]] + first[60:]


@pytest.fixture(scope="module")
def photos(make_index) -> CaptionIndex:
    index = make_index()
    index.upsert(PHOTOS)
    return index


@pytest.fixture(scope="module")
def index(make_index, entries: list[IndexEntry]) -> CaptionIndex:
    index = make_index()
    first = make_entries(70)[:60]
    v1 = index.upsert(first)
    v2 = index.upsert(entries)  # a replay of the 60 plus 10 new rows
    assert v2 > v1
    return index


def test_replayed_upserts_never_duplicate(index: CaptionIndex, entries: list[IndexEntry]) -> None:
    assert index.count() == 70
    assert all(index.get(e.image_id) is not None for e in entries)  # 70 distinct ids in 70 rows
    version = index.upsert(entries[:5])
    assert index.count() == 70 and version > 0
    assert index.upsert([]) == version  # nothing written


def test_get_returns_the_stored_row(index: CaptionIndex, entries: list[IndexEntry]) -> None:
    for entry in (entries[0], entries[4], entries[65], STAR):
        assert index.get(entry.image_id) == entry
    assert index.get(entries[0].image_id).caption_model == "captioner:2"
    assert index.get("no-such-image") is None


def test_english_caption_finds_its_row(index: CaptionIndex, entries: list[IndexEntry]) -> None:
    assert index.unindexed_rows() >= 70  # the index was built empty: every row is found by scanning
    english = [e for e in entries if e.caption_en]
    for entry in random.Random(1).sample(english, 20):
        hits = index.search(entry.caption_en, "en", 3)
        assert entry.image_id in [h.image_id for h in hits], entry.caption_en
        hit = next(h for h in hits if h.image_id == entry.image_id)
        assert hit.caption == entry.caption_en and hit.keywords == entry.keywords
        assert (hit.image_bucket, hit.image_key) == (entry.image_bucket, entry.image_key)
    scores = [h.score for h in index.search("red circle", "en", 10)]
    assert scores == sorted(scores, reverse=True) and len(scores) == 10


def test_korean_word_finds_korean_row(index: CaptionIndex, entries: list[IndexEntry]) -> None:
    for word in ("별", "보라색"):
        hits = index.search(word, "ko", 3)
        assert [h.image_id for h in hits][0] == STAR.image_id, word
        assert hits[0].caption == STAR.caption_ko
    korean_only = next(e for e in entries if not e.caption_en)
    hits = index.search(korean_only.caption_ko, "ko", 3)
    assert korean_only.image_id in [h.image_id for h in hits]
    assert index.search("보라색 별", "en", 1)[0].caption == STAR.caption_ko  # no English caption: the Korean one


@pytest.mark.parametrize(
    ("query", "lang", "limit", "message"),
    [
        ("red", "fr", 3, "lang"),
        ("red", "EN", 3, "lang"),
        ("red", "en", 0, "limit"),
        ("red", "en", 101, "limit"),
        ("", "en", 3, "query"),
        ("   ", "ko", 3, "query"),
    ],
)
def test_search_validates_arguments(index: CaptionIndex, query: str, lang: str, limit: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        index.search(query, lang, limit)


def test_upsert_validates_entries(index: CaptionIndex) -> None:
    with pytest.raises(ValueError, match="image_id"):
        index.upsert([dataclasses.replace(STAR, image_id="")])
    with pytest.raises(ValueError, match="no caption"):
        index.upsert([dataclasses.replace(STAR, caption_ko="")])
    assert index.count() == 70


def test_upserts_find_the_rows_they_replace_through_the_image_id_index(make_index) -> None:
    index = make_index(fold_rows=20)
    entries = make_entries(25)
    index.upsert(entries)
    assert index.fold_due()
    index.fold()
    table = index._table
    assert {found.name for found in table.list_indices()} == {FTS_INDEX, KEY_INDEX}
    assert table.index_stats(KEY_INDEX).num_indexed_rows == 25 and index.unindexed_rows() == 0
    index.upsert([dataclasses.replace(entries[3], caption_model="captioner:3")])
    assert index.count() == 25 and index.get(entries[3].image_id).caption_model == "captioner:3"
    assert f"ScalarIndexQuery: query=[image_id = {entries[3].image_id}]@{KEY_INDEX}" in table.search().where(f"image_id = '{entries[3].image_id}'").explain_plan()


def test_a_fold_removes_the_versions_older_than_the_retention(make_index) -> None:
    index = make_index(fold_rows=10, version_retention_s=0.5)
    entries = make_entries(20)
    for start in range(0, 8, 2):
        index.upsert(entries[start : start + 2])
    assert not index.fold_due()  # 8 rows wait
    kept = len(index._table.list_versions())
    assert kept >= 5  # the empty table, its two indexes, four upserts
    time.sleep(1)
    index.upsert(entries[8:12])
    assert index.fold_due()  # 12 unindexed rows: folded, and the versions before it removed
    index.fold()
    assert index.unindexed_rows() == 0 and not index.fold_due()
    assert len(index._table.list_versions()) < 5 <= kept
    assert index.count() == 12 and index.get(entries[0].image_id) == entries[0]


def test_a_fold_beside_the_writer_commits_while_new_rows_are_written(make_index) -> None:
    index = make_index(fold_rows=20)
    entries = make_entries(200)
    index.upsert(entries[:100])
    assert index.fold_due()
    writer = threading.Thread(target=lambda: [index.upsert(entries[start : start + 5]) for start in range(100, 200, 5)])
    writer.start()
    index.fold(hold_writer=False)  # new rows only: nothing of the fold's is changed meanwhile
    writer.join()
    ids = index._table.to_arrow().column("image_id").to_pylist()
    assert len(ids) == len(set(ids)) == 200
    assert index._table.index_stats(FTS_INDEX).num_indexed_rows >= 100
    for entry in entries[::20]:
        assert index.get(entry.image_id) == entry


def test_rows_written_after_the_index_are_found_while_readers_search(make_index) -> None:
    index = make_index(fold_rows=20)
    entries = make_entries(40)
    index.upsert(entries[:25])
    index.fold()
    assert index.unindexed_rows() == 0  # folded into the full-text index
    errors: list[Exception] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                index.search("small red circle", "en", 10)
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for start in range(25, 40, 5):
        index.upsert(entries[start : start + 5])
        index.upsert(entries[start : start + 5])
        if index.fold_due():
            index.fold()
    stop.set()
    for reader in readers:
        reader.join()
    assert errors == []
    assert index.count() == 40 and index.unindexed_rows() < 20
    index.upsert([entries[0], dataclasses.replace(entries[0], caption_model="captioner:3")])  # last one wins
    assert index.count() == 40 and index.get(entries[0].image_id).caption_model == "captioner:3"
    for entry in entries[25:]:
        query = entry.caption_en or entry.caption_ko
        assert entry.image_id in [h.image_id for h in index.search(query, "en", 3)], query


def _ids(rows: list[dict]) -> list[str]:
    return [row["image_id"] for row in rows]


def test_get_returns_tags_objects_and_text(photos: CaptionIndex) -> None:
    for entry in PHOTOS:
        assert photos.get(entry.image_id) == entry


@pytest.mark.parametrize("query", ["고양이", "고양이가", "고양이들"])
def test_korean_noun_meets_its_particles_in_full_text(photos: CaptionIndex, query: str) -> None:
    # "고양이와" in a caption and "가"/"들" in the query are the same noun to BM25; the
    # English-only cat shares no term with it.
    assert set(_ids(photos.full_text_rows(query, 10))) == {"cat-ko", "cat-and-dog-ko"}


def test_korean_query_finds_an_english_only_caption_by_vector(photos: CaptionIndex) -> None:
    for query, image_id in (("고양이", "cat-en"), ("오토바이", "motorcycle-en"), ("파스타 한 접시", "pasta-en")):
        entry = next(e for e in PHOTOS if e.image_id == image_id)
        assert not set(document_terms(entry).split()) & set(query.split())  # no shared term: only vectors can find it
        assert image_id in _ids(photos.vector_rows(query, 3)), query
        assert image_id in [hit.image_id for hit in photos.search(query, "ko", 3)], query
    assert photos.vector_rows("오토바이", 1)[0]["image_id"] == "motorcycle-en"


def test_english_query_finds_a_korean_only_caption_by_vector(photos: CaptionIndex) -> None:
    for query, image_id in (("a cup of coffee", "espresso-ko"), ("astronaut", "astronaut-ko"), ("a dog running on the beach", "beach-ko")):
        assert image_id in _ids(photos.vector_rows(query, 3)), query
        hits = photos.search(query, "en", 3)
        assert image_id in [hit.image_id for hit in hits], query
        assert next(hit for hit in hits if hit.image_id == image_id).caption  # the Korean caption stands in
    assert photos.vector_rows("a cup of coffee", 1)[0]["image_id"] == "espresso-ko"


def test_text_read_in_the_image_is_searchable(photos: CaptionIndex) -> None:
    assert _ids(photos.full_text_rows("sale", 10)) == ["shop-en"]
    assert _ids(photos.full_text_rows("할인", 10)) == ["sign-ko"]
    assert _ids(photos.full_text_rows("할인을", 10)) == ["sign-ko"]
    for query, image_id in (("sale", "shop-en"), ("할인", "sign-ko"), ("grand opening", "shop-en")):
        hit = photos.search(query, "en", 1)[0]
        assert hit.image_id == image_id, query
        assert hit.text == next(e.text for e in PHOTOS if e.image_id == image_id)


def test_tags_and_objects_are_searchable_in_both_languages(photos: CaptionIndex) -> None:
    assert _ids(photos.full_text_rows("bicycle", 10)) == ["street-en"]
    assert _ids(photos.full_text_rows("자전거", 10)) == ["street-en"]
    assert _ids(photos.full_text_rows("호숫가", 10)) == ["lake-en"]
    hit = photos.search("자전거", "ko", 1)[0]
    assert hit.image_id == "street-en" and hit.objects == ["bicycle", "자전거", "person", "사람"]


def test_exact_caption_ranks_first_in_either_language(photos: CaptionIndex) -> None:
    for entry in PHOTOS:
        caption = entry.caption_en or entry.caption_ko
        assert photos.search(caption, "en", 1)[0].image_id == entry.image_id, caption


def test_a_query_of_particles_only_falls_back_to_vectors(photos: CaptionIndex) -> None:
    assert photos.full_text_rows("에서는", 10) == [] and photos.full_text_rows("!!", 10) == []
    assert len(photos.search("에서는", "ko", 3)) == 3


def test_a_table_of_another_dimension_is_refused(photos: CaptionIndex, s3: S3Settings) -> None:
    with pytest.raises(ValueError, match="512-dim vectors, the embedder gives 384"):
        CaptionIndex(s3, photos.settings, _OtherEmbedder())
