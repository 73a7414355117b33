"""Caption text checks: profanity, and guesses about sensitive attributes of people.

Profanity is scored by the linear model of ``alt-profanity-check``, trained on
English text only (evaluated with numpy by ``services.moderation.profanity``). Korean is covered by a short bundled list of common
profanities and slurs matched as substrings, which misses spelling variants,
spacing tricks and anything not on the list.

Sensitive attributes (race or ethnicity, religion, sexual orientation, health
or disability, political opinion, gender, age) are found with curated English
and Korean patterns. An attribute word counts only where it describes a person:
"a black man" is a guess about race, "a black square" is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from services.moderation.profanity import predict_prob

KOREAN_PROFANITY = frozenset(
    {
        "씨발", "씨팔", "시발놈", "좆", "존나", "개새끼", "병신", "지랄", "썅",
        "미친놈", "미친년", "쌍년", "짱깨", "쪽바리", "깜둥이", "틀딱",
    }
)  # fmt: skip

RACE = "race_ethnicity"
RELIGION = "religion"
ORIENTATION = "sexual_orientation"
HEALTH = "health_disability"
POLITICS = "political_opinion"
GENDER = "gender"
AGE = "age"


@dataclass(frozen=True)
class SensitiveFinding:
    """One attribute guess in a caption: its category, the matched words and their span in the text."""

    category: str
    term: str
    start: int
    end: int


def profanity_scores(texts: Sequence[str]) -> list[float]:
    """Profanity probability (0..1) of each text; 1.0 where a listed Korean profanity occurs."""
    if not texts:
        return []
    english = predict_prob(list(texts))
    return [
        1.0 if any(word in text for word in KOREAN_PROFANITY) else float(score)
        for text, score in zip(texts, english)
    ]


# A phrase found in a caption: (start, end, neutral replacement, findings).
_Phrase = tuple[int, int, str, list[SensitiveFinding]]


def _alternation(words: Sequence[str]) -> str:
    """Regex alternation of the words, longest first; "_" matches spaces or a hyphen."""
    ordered = sorted({w for w in words if w}, key=len, reverse=True)
    return "|".join(re.escape(w).replace("_", r"[\s-]+") for w in ordered)


def _words(table: dict[str, str]) -> list[str]:
    return [word for words in table.values() for word in words.split()]


def _categories(*tables: dict[str, str]) -> dict[str, str]:
    """Category of each word, the first table naming it winning."""
    lookup: dict[str, str] = {}
    for table in tables:
        for category, words in table.items():
            for word in words.split():
                lookup.setdefault(word, category)
    return lookup


def _key(term: str) -> str:
    """A matched term as written in the word lists ("Middle-aged" -> "middle_aged")."""
    return re.sub(r"[\s-]+", "_", term.lower())


def _findings(
    text: str, phrase: re.Match[str], terms: re.Pattern[str], categories: dict[str, str]
) -> list[SensitiveFinding]:
    """The attribute terms of a phrase, leaving out the kept person noun."""
    end = phrase.start("kept") if phrase.group("kept") else phrase.end()
    return [
        SensitiveFinding(categories[_key(t.group())], t.group(), t.start(), t.end())
        for t in terms.finditer(text, phrase.start(), end)
    ]


# --- English ------------------------------------------------------------------

# Nouns that are an attribute guess by themselves.
_EN_NOUNS = {
    GENDER: "man men woman women boy boys girl girls guy guys lady ladies gentleman gentlemen male males female "
    "females husband husbands wife wives mother mothers father fathers son sons daughter daughters brother brothers "
    "sister sisters grandmother grandmothers grandfather grandfathers grandma grandpa",
    AGE: "teenager teenagers teen teens senior_citizen senior_citizens seniors elders",
    RACE: "asians africans caucasians hispanics latinos latinas arabs",
    RELIGION: "jew jews muslims christians hindus buddhists sikhs catholics atheists",
    ORIENTATION: "gays lesbians bisexuals homosexuals",
    HEALTH: "amputee amputees paraplegics wheelchair_user wheelchair_users",
    POLITICS: "democrats republicans communists socialists leftists liberals conservatives",
}
# Words that describe an attribute only in front of a person noun ("a black man", not "a black square").
_EN_ADJECTIVES = {
    RACE: "asian african american black white caucasian hispanic latino latina arab arabic indian chinese japanese "
    "korean mexican european middle_eastern native_american indigenous brown yellow dark_skinned light_skinned "
    "fair_skinned brown_skinned black_skinned white_skinned mixed_race biracial ethnic oriental",
    RELIGION: "muslim christian jewish hindu buddhist sikh catholic protestant islamic atheist mormon orthodox",
    ORIENTATION: "gay lesbian bisexual homosexual heterosexual straight queer lgbt lgbtq",
    HEALTH: "disabled handicapped blind deaf mute paralyzed paralysed paraplegic autistic sick ill mentally_ill "
    "diabetic obese overweight fat crippled pregnant wheelchair_bound",
    POLITICS: "liberal conservative republican democrat democratic communist socialist leftist right_wing left_wing "
    "far_right far_left progressive",
    GENDER: "male female transgender trans nonbinary non_binary",
    AGE: "young younger old older elderly aged middle_aged teenage adolescent senior little",
}
# Adjectives that double as a singular noun ("a muslim praying"): they count alone when followed by an
# -ing verb (not a common -ing noun), a preposition, "and a", "who", a form of "be", punctuation or the end.
_EN_ADJECTIVE_NOUNS = {
    RACE: "asian african caucasian hispanic latino latina arab",
    RELIGION: "muslim christian hindu buddhist sikh catholic atheist",
    ORIENTATION: "gay lesbian bisexual homosexual transgender",
    POLITICS: "democrat republican communist socialist leftist",
}
_EN_NOUN_CONTEXT = (
    r"(?=\s*(?:[^\w\s]|$)|\s+(?:(?!(?:build|paint|draw|writ|cloth|th|k|r|w|str|sw|spr|ceil|wedd|morn|even)ings?\b)"
    r"\w+ing|(?:and|or)\s+(?:an?|the)|in|on|at|with|near|by|under|over|beside|behind|next|from|who|is|are|was|were)\b)"
)
# Person nouns with no attribute of their own: kept when the attribute words in front are removed.
_EN_PEOPLE = (
    "person people persons individual individuals human humans adult adults child children kid kids baby babies "
    "toddler toddlers infant infants couple couples family families friend friends student students worker workers "
    "doctor doctors nurse nurses teacher teachers player players athlete athletes soldier soldiers officer officers "
    "chef chefs farmer farmers tourist tourists customer customers driver drivers rider riders runner runners dancer "
    "dancers artist artists musician musicians monk monks nun nuns priest priests patient patients parent parents "
    "pedestrian pedestrians passenger passengers surfer surfers skier skiers skateboarder skateboarders voter voters"
)
# Neutral words for attribute nouns; any other becomes "person", or "people" when plural (-s, -men).
_EN_NEUTRAL = {
    **dict.fromkeys(("boy", "girl", "son", "daughter"), "child"),
    **dict.fromkeys(("boys", "girls", "sons", "daughters"), "children"),
    **dict.fromkeys(("mother", "father"), "parent"),
    **dict.fromkeys(("mothers", "fathers"), "parents"),
    **dict.fromkeys(("brother", "sister"), "sibling"),
    **dict.fromkeys(("brothers", "sisters"), "siblings"),
    **dict.fromkeys(("husband", "wife"), "spouse"),
    **dict.fromkeys(("husbands", "wives"), "spouses"),
    **dict.fromkeys(("grandmother", "grandfather", "grandma", "grandpa"), "grandparent"),
    **dict.fromkeys(("grandmothers", "grandfathers"), "grandparents"),
}
_EN_PRONOUNS = {
    "he": "they", "she": "they", "him": "them", "his": "their", "hers": "theirs",
    "himself": "themselves", "herself": "themselves",
}  # fmt: skip
_EN_AGREEMENT = {"is": "are", "was": "were", "has": "have", "does": "do"}
# "her" before one of these, punctuation or the end is an object ("them"), otherwise a possessive ("their").
_EN_OBJECT_FOLLOWERS = frozenset("and or but in on at with to from by as while near of under over into onto for".split())

_EN_CATEGORY = _categories(_EN_NOUNS, _EN_ADJECTIVES, _EN_ADJECTIVE_NOUNS)
_EN_ADJECTIVE = _alternation(_words(_EN_ADJECTIVES))
_EN_PHRASE = re.compile(
    rf"\b(?:(?:(?:{_EN_ADJECTIVE})\s+)+(?P<kept>{_alternation(_EN_PEOPLE.split())})"
    rf"|(?:(?:{_EN_ADJECTIVE})\s+)*(?:(?P<noun>{_alternation(_words(_EN_NOUNS))})"
    rf"|(?:{_alternation(_words(_EN_ADJECTIVE_NOUNS))}){_EN_NOUN_CONTEXT}))\b(?!-\w)",
    re.IGNORECASE,
)
_EN_TERM = re.compile(rf"\b(?:{_alternation(list(_EN_CATEGORY))})\b", re.IGNORECASE)
_EN_PRONOUN = re.compile(
    rf"\b(?P<pronoun>{'|'.join(_EN_PRONOUNS)}|her)\b(?=(?:\s+(?P<next>\w+)|\s*[^\w\s]|\s*$)?)", re.IGNORECASE
)
_EN_ARTICLE = re.compile(r"\b([Aa])n?(?=\s+$)")
_SENTENCE_START = re.compile(r"(?:.*[.!?])?[\W_]*", re.DOTALL)


def _english(text: str) -> Iterator[_Phrase]:
    for match in _EN_PHRASE.finditer(text):
        noun = _key(match.group("noun") or "")
        plural = "people" if noun.endswith(("s", "men")) else "person"
        replacement = match.group("kept") or _EN_NEUTRAL.get(noun, plural)
        yield match.start(), match.end(), replacement, _findings(text, match, _EN_TERM, _EN_CATEGORY)
    for match in _EN_PRONOUN.finditer(text):
        pronoun, following = match.group("pronoun").lower(), (match.group("next") or "").lower()
        finding = SensitiveFinding(GENDER, match.group("pronoun"), match.start(), match.end())
        if pronoun == "her":
            replacement = "them" if not following or following in _EN_OBJECT_FOLLOWERS else "their"
        else:
            replacement = _EN_PRONOUNS[pronoun]
        if pronoun in ("he", "she") and following in _EN_AGREEMENT:  # "she is" -> "they are"
            gap = text[match.end() : match.start("next")]
            yield match.start(), match.end("next"), replacement + gap + _EN_AGREEMENT[following], [finding]
        else:
            yield match.start(), match.end(), replacement, [finding]


# --- Korean -------------------------------------------------------------------

_KO_NOUNS = {
    GENDER: "남자 여자 남성 여성 소년 소녀 남학생 여학생 남자아이 여자아이 아저씨 아줌마 할머니 할아버지 숙녀 "
    "엄마 아빠 어머니 아버지 손자 손녀",
    AGE: "노인 어르신 청소년 십대 중년 노년",
    RACE: "흑인 백인 황인 동양인 서양인 아시아인 아프리카인 아랍인 혼혈 혼혈인 유색인종 히스패닉 라틴계 흑인종 백인종",
    RELIGION: "무슬림 이슬람교도 기독교인 기독교도 크리스천 불교도 불교신자 천주교인 가톨릭신자 유대인 힌두교도",
    ORIENTATION: "동성애자 양성애자 이성애자 레즈비언 성소수자 트랜스젠더 퀴어 게이",
    HEALTH: "장애인 시각장애인 청각장애인 지체장애인 맹인 환자 임산부 비만인",
    POLITICS: "보수주의자 진보주의자 공산주의자 사회주의자 민주당원 공화당원 좌파 우파 극우 극좌",
}
_KO_ADJECTIVES = {
    AGE: "젊은 어린 늙은 나이든 나이_든 나이_많은 중년의 노년의",
    HEALTH: "장애가_있는 장애를_가진 휠체어를_탄 임신한 뚱뚱한 아픈",
    RACE: "검은_피부의 흰_피부의 피부가_검은 피부가_흰",
}
_KO_PEOPLE = "사람 아이 어린이 아기 학생 커플 가족 부부 인물 친구"
_KO_NEUTRAL = {
    **dict.fromkeys(("소년", "소녀", "남자아이", "여자아이"), "아이"),
    **dict.fromkeys(("남학생", "여학생"), "학생"),
    **dict.fromkeys(("엄마", "아빠", "어머니", "아버지"), "부모"),
    **dict.fromkeys(("손자", "손녀"), "손주"),
}
# Korean has no word boundaries: a term must start a word and end it or be followed by a particle.
_KO_END = r"(?![가-힣])|(?=들|이|가|은|는|을|를|의|와|과|도|만|에|로|으로|랑|처럼|보다|한테|께)"
_KO_CATEGORY = _categories(_KO_NOUNS, _KO_ADJECTIVES)
_KO_MODIFIER = _alternation(_words(_KO_NOUNS) + _words(_KO_ADJECTIVES))
_KO_PHRASE = re.compile(
    rf"(?<![가-힣])(?:(?:(?:{_KO_MODIFIER})\s*)+(?P<kept>{_alternation(_KO_PEOPLE.split())})(?:{_KO_END})"
    rf"|(?:(?:{_KO_MODIFIER})\s*)*(?P<noun>{_alternation(_words(_KO_NOUNS))})(?:{_KO_END}))"
)
_KO_TERM = re.compile(_alternation(list(_KO_CATEGORY)))
# Particles whose form depends on whether the noun before them ends in a consonant: (after consonant, after vowel).
_KO_PARTICLE_FORMS = (("이", "가"), ("은", "는"), ("을", "를"), ("과", "와"), ("으로", "로"))
_KO_PARTICLE = re.compile(r"(으로|로|이|가|은|는|을|를|과|와)(?![가-힣])")


def _korean(text: str) -> Iterator[_Phrase]:
    for match in _KO_PHRASE.finditer(text):
        replacement = match.group("kept") or _KO_NEUTRAL.get(match.group("noun"), "사람")
        yield match.start(), match.end(), replacement, _findings(text, match, _KO_TERM, _KO_CATEGORY)


def _korean_particle(noun: str, particle: str) -> str:
    """The form of ``particle`` that goes after ``noun`` (이/가, 은/는, 을/를, 과/와, 으로/로)."""
    coda = (ord(noun[-1]) - ord("가")) % 28 if "가" <= noun[-1] <= "힣" else 0
    after_consonant, after_vowel = next(forms for forms in _KO_PARTICLE_FORMS if particle in forms)
    if after_vowel == "로":
        return after_vowel if coda in (0, 8) else after_consonant  # a final ㄹ takes 로
    return after_consonant if coda else after_vowel


# --- Public API -----------------------------------------------------------------


def _phrases(text: str, language: str) -> list[_Phrase]:
    scanners = {"en": (_english,), "ko": (_korean,)}.get(language.split("-")[0].lower(), (_english, _korean))
    return sorted((phrase for scan in scanners for phrase in scan(text)), key=lambda phrase: phrase[0])


def sensitive_attributes(text: str, language: str) -> list[SensitiveFinding]:
    """Guesses about sensitive attributes of people in a caption in ``language`` (BCP 47: "en", "ko")."""
    return [finding for *_, findings in _phrases(text, language) for finding in findings]


def neutralise(text: str, language: str) -> str:
    """Rewrite a caption without attribute guesses: "a young asian woman" -> "a person", "젊은 여자" -> "사람"."""
    result, position = "", 0
    for start, end, replacement, _ in _phrases(text, language):
        result += text[position:start]
        if text[start].isupper() and _SENTENCE_START.fullmatch(text, 0, start):
            replacement = replacement[0].upper() + replacement[1:]
        if replacement.isascii():  # "an person" -> "a person", "a adult" -> "an adult"
            article = "an" if replacement[0].lower() in "aeiou" else "a"
            result = _EN_ARTICLE.sub(lambda m: article if m.group(1) == "a" else article.capitalize(), result)
        elif particle := _KO_PARTICLE.match(text, end):  # "여자가" -> "사람이"
            replacement += _korean_particle(replacement, particle.group(1))
            end = particle.end()
        result += replacement
        position = end
    return result + text[position:]
