"""The pure ranking logic of the search index."""

from __future__ import annotations

from services.indexing.index_store import keyword_ranking, phrase_ranking, reciprocal_rank_fusion


def _row(image_id: str, *keywords: str) -> dict:
    return {"image_id": image_id, "keywords": list(keywords)}


def test_keyword_ranking_prefers_rows_tagged_with_the_query_phrase() -> None:
    rows = [_row("a", "red square", "yellow circle"), _row("b", "red circle", "blue star"), _row("c", "red circle", "blue star", "photo")]
    assert [r["image_id"] for r in keyword_ranking("red circle", rows)] == ["b", "c"]
    assert [r["image_id"] for r in keyword_ranking("a photo of two red circles", rows)] == ["c", "b"]
    assert keyword_ranking("green triangle", rows) == []
    assert [r["image_id"] for r in keyword_ranking("빨간 원", [_row("k", "빨간 원"), _row("j", "빨간 별")])] == ["k"]


def test_keyword_ranking_matches_whole_words_only() -> None:
    assert keyword_ranking("a starry night", [_row("s", "star")]) == []
    assert keyword_ranking("stars", [_row("s", "star")]) != []


def test_fusion_sums_reciprocal_ranks_and_counts_each_image_once_per_ranking() -> None:
    fused = reciprocal_rank_fusion([[_row("b"), _row("a")], [_row("a"), _row("a"), _row("c")]], k=60)
    assert [row["image_id"] for row, _ in fused] == ["a", "b", "c"]
    scores = dict((row["image_id"], score) for row, score in fused)
    assert scores["a"] == 1 / 62 + 1 / 61 and scores["b"] == 1 / 61 and scores["c"] == 1 / 62


def test_phrase_ranking_puts_captions_containing_the_whole_query_first_shortest_first() -> None:
    rows = [
        {"image_id": "long", "caption_en": "A photo of a large black square on a beige background, and a star", "caption_ko": ""},
        {"image_id": "exact", "caption_en": "a photo of a large  black square on a beige background", "caption_ko": ""},
        {"image_id": "other", "caption_en": "a photo of a large black circle on a beige background", "caption_ko": ""},
        {"image_id": "ko", "caption_en": "", "caption_ko": "베이지색 배경에 큰 검은 사각형 한 개가 있는 사진"},
    ]
    assert [r["image_id"] for r in phrase_ranking("a photo of a large black square on a beige background", rows)] == ["exact", "long"]
    assert [r["image_id"] for r in phrase_ranking("검은 사각형", rows)] == ["ko"]
