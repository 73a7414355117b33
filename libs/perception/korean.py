"""Korean grammar for captions: particles that follow a word's final consonant (받침), native counts.

A particle's form depends on how the word before it is read aloud: "고양이가", "사람이",
"오토바이와", "말과", "버스로", "지하철로" (a final ㄹ takes 로). Digits are read as Sino-Korean
numbers ("3" 삼), Latin words as their Korean loanword sound ("OPEN" 오픈, "HOTEL" 호텔) and
upper-case abbreviations letter by letter ("TV" 티비, "KBS" 케이비에스).
"""

from __future__ import annotations

import re
from enum import Enum

_SYLLABLE_FIRST, _SYLLABLE_LAST = ord("가"), ord("힣")
_RIEUL_CODA = 8  # index of ㄹ among the 28 final-consonant slots of a Hangul syllable
_JAMO_CONSONANTS = "ㄱㄲㄳㄴㄵㄶㄷㄸㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅃㅄㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JAMO_VOWELS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
# How each last digit is read: 일 삼 육 칠 팔 end in a consonant, 일 칠 팔 in ㄹ; a final 0 is
# 영, 십, 백, 천 or 만, all ending in a consonant other than ㄹ.
_DIGIT_RIEUL, _DIGIT_CONSONANT = frozenset("178"), frozenset("0136")
# Letter names ending in a consonant: 엘 엠 엔 알 (ㄹ for L and R).
_LETTER_RIEUL, _LETTER_CONSONANT = frozenset("LR"), frozenset("LMNR")
# Upper-case words of one or two letters, or without a vowel, are spelled out ("TV", "KBS");
# longer ones are words ("OPEN", "STOP").
_ABBREVIATION = re.compile(r"[A-Z]{1,2}|[B-DF-HJ-NP-TV-Z]+")
_LATIN_WORD = re.compile(r"[A-Za-z]+$")


class _Coda(Enum):
    NONE = "none"
    RIEUL = "rieul"
    OTHER = "other"
    UNKNOWN = "unknown"


def _latin_coda(word: str) -> _Coda:
    if _ABBREVIATION.fullmatch(word):
        last = word[-1]
        return _Coda.RIEUL if last in _LETTER_RIEUL else _Coda.OTHER if last in _LETTER_CONSONANT else _Coda.NONE
    word = word.lower()
    if word.endswith(("l", "le")):  # hotel 호텔, apple 애플
        return _Coda.RIEUL
    if word.endswith(("m", "n", "ng", "ck")):  # room 룸, open 오픈, king 킹, black 블랙
        return _Coda.OTHER
    # A short vowel before k, p or t is read as a final consonant (shop 숍, cat 캣, book 북),
    # while other endings get a vowel of their own (cake 케이크, boat 보트, park 파크).
    if re.search(r"(?:^|[^aeiou])[aeiou][kpt]$|ook$", word):
        return _Coda.OTHER
    return _Coda.NONE


def _coda(word: str) -> _Coda:
    text = re.sub(r"[\W_]+$", "", word.strip())  # closing quotes, brackets and punctuation are not read
    if not text:
        return _Coda.UNKNOWN
    last = text[-1]
    if _SYLLABLE_FIRST <= ord(last) <= _SYLLABLE_LAST:
        coda = (ord(last) - _SYLLABLE_FIRST) % 28
        return _Coda.NONE if coda == 0 else _Coda.RIEUL if coda == _RIEUL_CODA else _Coda.OTHER
    if last in _JAMO_CONSONANTS:
        return _Coda.RIEUL if last == "ㄹ" else _Coda.OTHER
    if last in _JAMO_VOWELS:
        return _Coda.NONE
    if last.isdigit() and last.isascii():
        return _Coda.RIEUL if last in _DIGIT_RIEUL else _Coda.OTHER if last in _DIGIT_CONSONANT else _Coda.NONE
    latin = _LATIN_WORD.search(text)
    if latin:
        return _latin_coda(latin.group())
    return _Coda.UNKNOWN


def has_final_consonant(word: str) -> bool | None:
    """Whether ``word`` is read ending in a consonant (받침); None when that cannot be told (e.g. Chinese characters)."""
    coda = _coda(word)
    return None if coda is _Coda.UNKNOWN else coda is not _Coda.NONE


# pair -> (after a consonant, after a vowel, written when the reading is unknown)
_PARTICLES = {
    "이/가": ("이", "가", "이(가)"),
    "을/를": ("을", "를", "을(를)"),
    "은/는": ("은", "는", "은(는)"),
    "과/와": ("과", "와", "과(와)"),
    "으로/로": ("으로", "로", "(으)로"),
    "이라는/라는": ("이라는", "라는", "(이)라는"),
}


def particle(word: str, pair: str) -> str:
    """The form of the particle ``pair`` ("이/가", "을/를", "은/는", "과/와", "으로/로", "이라는/라는") after ``word``.

    When the reading is unknown both forms are written, as Korean software does: "이(가)".
    """
    try:
        after_consonant, after_vowel, either = _PARTICLES[pair]
    except KeyError:
        raise ValueError(f"unknown particle pair {pair!r}; expected one of {', '.join(_PARTICLES)}") from None
    coda = _coda(word)
    if coda is _Coda.UNKNOWN:
        return either
    if coda is _Coda.NONE or (coda is _Coda.RIEUL and pair == "으로/로"):
        return after_vowel
    return after_consonant


_UNITS = ("", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉")
_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")
NATIVE_COUNT_LIMIT = 99  # native Korean numbers are read up to 99; larger counts are written in digits


def native_count(n: int) -> str:
    """The native Korean number as it stands before a counter: 한, 두, 세, 네, 다섯 … 스무, 스물한 … 아흔아홉; "100" beyond."""
    if n < 1:
        raise ValueError(f"a count must be at least 1, not {n}")
    if n > NATIVE_COUNT_LIMIT:
        return str(n)
    if n == 20:
        return "스무"  # 스물 shortens before a counter: 스무 명
    return _TENS[n // 10] + _UNITS[n % 10]


def count_phrase(noun_ko: str, n: int, counter: str) -> str:
    """A counted noun: "고양이 한 마리", "사람 세 명", "자동차 120대"."""
    number = native_count(n)
    return f"{noun_ko} {number}{counter}" if n > NATIVE_COUNT_LIMIT else f"{noun_ko} {number} {counter}"


def join_and(items: list[str]) -> str:
    """Nouns joined as Korean lists them: "A와 B", "A, B과 C" (와/과 after the second-last item)."""
    if not items:
        raise ValueError("nothing to join")
    if len(items) == 1:
        return items[0]
    head = ", ".join(items[:-1])
    return f"{head}{particle(items[-2], '과/와')} {items[-1]}"
