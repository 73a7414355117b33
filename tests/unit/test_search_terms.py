"""Search terms: Korean content morphemes without particles or endings, everything else as written."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from services.indexing.search_terms import has_hangul, search_terms


@pytest.mark.parametrize("text", ["고양이가 자고 있다", "고양이와 강아지", "고양이를 안은 사람", "고양이들이 논다", "고양이 한 마리가 있는 사진"])
def test_korean_particles_and_endings_are_stripped_from_nouns(text: str) -> None:
    terms = search_terms(text)
    assert "고양이" in terms
    assert not {"가", "와", "를", "들", "이", "는", "다"} & set(terms), terms


def test_korean_keeps_nouns_and_stems_in_reading_order() -> None:
    assert search_terms("고양이와 강아지") == ["고양이", "강아지"]
    assert search_terms("할인 행사") == ["할인", "행사"]
    # An adjective is kept as its stem, so "빨간" in a query meets "빨간" in any sentence.
    assert search_terms("빨간 자동차가 있다")[:2] == search_terms("빨간 자동차")
    assert "빨갛" in search_terms("빨간 꽃")


def test_english_words_pass_through_as_written() -> None:
    assert search_terms("a photo of a Tabby cat") == ["a", "photo", "of", "a", "Tabby", "cat"]
    assert search_terms("GRAND OPENING SALE!") == ["GRAND", "OPENING", "SALE!"]
    assert search_terms("  ... ") == []
    assert search_terms("") == []


def test_mixed_text_keeps_english_and_numbers_next_to_korean_morphemes() -> None:
    assert search_terms("GRAND OPENING SALE 50% 할인 행사를") == ["GRAND", "OPENING", "SALE", "50%", "할인", "행사"]
    terms = search_terms("3D프린터로 만든 cat 인형")
    assert terms[:2] == ["3D", "프린터"] and "cat" in terms and terms[-1] == "인형"


def test_hashtags_and_compounds_yield_their_nouns() -> None:
    assert search_terms("#보라색별") == ["보라색", "별"]
    assert "고양이" in search_terms("얼룩고양이")


def test_concurrent_calls_agree_with_serial_ones() -> None:
    texts = ["고양이가 소파 위에서 자고 있다", "에스프레소 한 잔이 놓인 나무 테이블", "빨간 원 두 개", "a red circle", "도로 위의 오토바이"] * 20
    serial = [search_terms(text) for text in texts]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(search_terms, texts)) == serial


def test_has_hangul() -> None:
    assert has_hangul("cat 고양이") and has_hangul("ㄱ") and not has_hangul("cat 3.5 猫")
