"""Keywords and hashtags for search, derived from a caption."""

from __future__ import annotations

from captioner.parsing import parse_objects, parse_style, words as caption_words
from captioner.vocabulary import KO_COLOURS, KO_SHAPES, KO_STYLES

EN_STYLE_WORDS = {"photo": "photo", "illustration": "illustration", "lineart": "line drawing"}
_STOPWORDS = frozenset(
    "a an the of and or with on in at to by for from is are was were be this that these those it its "
    "next against background there some two three four one".split()
)


def kind_keyword(colour: str, shape: str, language: str) -> str:
    """The keyword of one object kind, e.g. ``red circle`` or ``빨간 원``."""
    return f"{colour} {shape}" if language == "en" else f"{KO_COLOURS[colour]} {KO_SHAPES[shape]}"


def style_keyword(style: str, language: str) -> str:
    """The keyword of a rendering style, e.g. ``line drawing`` or ``선화``."""
    return EN_STYLE_WORDS[style] if language == "en" else KO_STYLES[style]


def caption_keywords(caption: str, language: str, limit: int = 8) -> list[str]:
    """Keywords of a caption: each colour+shape it names, then its style.

    Captions outside the scene grammar (e.g. from another checkpoint) fall back to
    their content words.
    """
    words: list[str] = []
    for _, colour, shape in parse_objects(caption, language):
        if colour == "?":
            continue
        word = kind_keyword(colour, shape, language)
        if word not in words:
            words.append(word)
    style = parse_style(caption, language)
    if words:
        if style:
            words.append(style_keyword(style, language))
        return words[:limit]
    for token in caption_words(caption):
        if token not in _STOPWORDS and len(token) > 1 and token not in words:
            words.append(token)
    return words[:limit]


def hashtags(keywords: list[str]) -> list[str]:
    """``#redcircle``-style tags of keywords."""
    return ["#" + keyword.replace(" ", "") for keyword in keywords]
