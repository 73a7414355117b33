"""Korean particles after the final sound of a word, and native counts before counters."""

from __future__ import annotations

import pytest

from perception.korean import count_phrase, has_final_consonant, join_and, native_count, particle


@pytest.mark.parametrize(
    ("word", "pair", "expected"),
    [
        ("고양이", "이/가", "가"),
        ("사람", "이/가", "이"),
        ("책", "을/를", "을"),
        ("사과", "을/를", "를"),
        ("말", "은/는", "은"),
        ("버스", "은/는", "는"),
        ("말", "과/와", "과"),
        ("오토바이", "과/와", "와"),
        ("버스", "으로/로", "로"),
        ("지하철", "으로/로", "로"),  # a final ㄹ takes 로
        ("공항", "으로/로", "으로"),
        ("카페 영업중", "이라는/라는", "이라는"),
        ("OPEN", "이라는/라는", "이라는"),  # 오픈
        ("CAFE", "이라는/라는", "라는"),  # 카페
        ("HOTEL", "으로/로", "로"),  # 호텔
        ("STOP", "이/가", "이"),  # 스톱
        ("TV", "이/가", "가"),  # 티비
        ("ATM", "이/가", "이"),  # 에이티엠
        ("3", "이/가", "이"),  # 삼
        ("2", "이/가", "가"),  # 이
        ("7", "으로/로", "로"),  # 칠
        ("10", "을/를", "을"),  # 십
        ("“영업중”", "이라는/라는", "이라는"),  # closing quotes are not read
        ("北京", "이/가", "이(가)"),  # cannot tell: both forms, as Korean software writes
        ("北京", "으로/로", "(으)로"),
    ],
)
def test_particles(word, pair, expected):
    assert particle(word, pair) == expected


def test_has_final_consonant():
    assert has_final_consonant("사람") is True
    assert has_final_consonant("고양이") is False
    assert has_final_consonant("...") is None


def test_unknown_particle_pair_is_refused():
    with pytest.raises(ValueError, match="particle pair"):
        particle("사람", "의/에")


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, "한"), (2, "두"), (3, "세"), (4, "네"), (5, "다섯"), (10, "열"), (11, "열한"), (19, "열아홉"), (20, "스무"), (21, "스물한"), (34, "서른네"), (99, "아흔아홉"), (100, "100")],
)
def test_native_count(n, expected):
    assert native_count(n) == expected


def test_count_phrase():
    assert count_phrase("고양이", 1, "마리") == "고양이 한 마리"
    assert count_phrase("사람", 3, "명") == "사람 세 명"
    assert count_phrase("자동차", 20, "대") == "자동차 스무 대"
    assert count_phrase("자동차", 120, "대") == "자동차 120대"
    with pytest.raises(ValueError, match="at least 1"):
        count_phrase("사람", 0, "명")


def test_join_and():
    assert join_and(["말 두 마리", "사람 한 명"]) == "말 두 마리와 사람 한 명"
    assert join_and(["사람 한 명", "말 두 마리"]) == "사람 한 명과 말 두 마리"
    assert join_and(["사람 한 명", "개 한 마리", "자전거 한 대"]) == "사람 한 명, 개 한 마리와 자전거 한 대"
    assert join_and(["궁전"]) == "궁전"
