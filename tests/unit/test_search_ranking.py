"""The pure ranking logic of the search index."""

from __future__ import annotations

from services.indexing.index_store import keyword_ranking, phrase_ranking, reciprocal_rank_fusion


def _row(image_id: str, *keywords: str, tags: tuple[str, ...] = (), objects: tuple[str, ...] = ()) -> dict:
    return {"image_id": image_id, "keywords": list(keywords), "tags": list(tags), "objects": list(objects)}


def test_keyword_ranking_prefers_rows_tagged_with_the_query_phrase() -> None:
    rows = [_row("a", "red square", "yellow circle"), _row("b", "red circle", "blue star"), _row("c", "red circle", "blue star", "photo")]
    assert [r["image_id"] for r in keyword_ranking("red circle", rows)] == ["b", "c"]
    assert [r["image_id"] for r in keyword_ranking("a photo of two red circles", rows)] == ["c", "b"]
    assert keyword_ranking("green triangle", rows) == []
    assert [r["image_id"] for r in keyword_ranking("빨간 원", [_row("k", "빨간 원"), _row("j", "빨간 별")])] == ["k"]


def test_keyword_ranking_matches_whole_words_only() -> None:
    assert keyword_ranking("a starry night", [_row("s", "star")]) == []
    assert keyword_ranking("stars", [_row("s", "star")]) != []


def test_keyword_ranking_counts_tags_and_objects_once_each() -> None:
    rows = [
        _row("tagged", tags=("tabby cat", "얼룩고양이")),
        _row("both", "cat", tags=("tabby cat",), objects=("cat", "고양이", "couch", "소파")),
        _row("neither", "dog", objects=("dog", "개")),
    ]
    assert [r["image_id"] for r in keyword_ranking("a tabby cat on a couch", rows)] == ["both", "tagged"]
    # The Korean tag names the kind exactly; the compound also names the object "고양이".
    assert [r["image_id"] for r in keyword_ranking("얼룩고양이", rows)] == ["tagged", "both"]


def test_keyword_ranking_sees_korean_labels_through_particles_and_endings() -> None:
    rows = [_row("circle", "빨간 원"), _row("star", "빨간 별"), _row("cat", objects=("고양이",)), _row("horse", objects=("말",))]
    assert [r["image_id"] for r in keyword_ranking("빨간 원이 있는 사진", rows)] == ["circle"]
    assert [r["image_id"] for r in keyword_ranking("소파 위의 고양이와 강아지", rows)] == ["cat"]
    # "말벌" (wasp) and "개구리" (frog) are words of their own, not "말" (horse) or "개" (dog).
    assert keyword_ranking("말벌 한 마리", rows) == [] and keyword_ranking("개구리가 있는 연못", [_row("dog", "개")]) == []
    assert [r["image_id"] for r in keyword_ranking("말을 탄 사람", rows)] == ["horse"]


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
    assert [r["image_id"] for r in phrase_ranking("Large Black", rows)] == ["other", "exact", "long"]
    assert phrase_ranking("   ", rows) == []


def test_phrase_ranking_matches_words_not_parts_of_words() -> None:
    rows = [
        {"image_id": "cat", "caption_en": "a photo of a tabby cat", "caption_ko": "얼룩 고양이가 있는 사진"},
        {"image_id": "category", "caption_en": "a category chart", "caption_ko": "공원의 무지개 사진"},
        {"image_id": "cats", "caption_en": "two cats on a sofa", "caption_ko": "소파 위의 고양이 두 마리"},
    ]
    assert [r["image_id"] for r in phrase_ranking("cat", rows)] == ["cats", "cat"]
    # A Korean query may run on into a particle, but never starts inside a word.
    assert [r["image_id"] for r in phrase_ranking("고양이", rows)] == ["cat", "cats"]
    assert phrase_ranking("원", rows) == [] and phrase_ranking("개", rows) == []
