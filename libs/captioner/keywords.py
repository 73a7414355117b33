"""Keywords and hashtags for search, derived from a caption."""

from __future__ import annotations

import re

from captioner.parsing import parse_objects, parse_style
from captioner.vocabulary import KO_COLOURS, KO_SHAPES, KO_STYLES

EN_STYLE_WORDS = {"photo": "photo", "illustration": "illustration", "lineart": "line drawing"}
_STOPWORDS = frozenset(
    "a an the of and or with on in at to by for from is are was were be this that these those it its "
    "next against background there some two three four one".split()
)


def caption_keywords(caption: str, language: str, limit: int = 8) -> list[str]:
    """Keywords of a caption: each colour+shape it names, then its style.

    Captions outside the scene grammar (e.g. from another checkpoint) fall back to
    their content words.
    """
    words: list[str] = []
    for _, colour, shape in parse_objects(caption, language):
        if colour == "?":
            continue
        word = f"{colour} {shape}" if language == "en" else f"{KO_COLOURS[colour]} {KO_SHAPES[shape]}"
        if word not in words:
            words.append(word)
    style = parse_style(caption, language)
    if words:
        if style:
            words.append(EN_STYLE_WORDS[style] if language == "en" else KO_STYLES[style])
        return words[:limit]
    for token in re.findall(r"[\w가-힣]+", caption.lower()):
        if token not in _STOPWORDS and len(token) > 1 and token not in words:
            words.append(token)
    return words[:limit]


def hashtags(keywords: list[str]) -> list[str]:
    """``#redcircle``-style tags of keywords."""
    return ["#" + keyword.replace(" ", "") for keyword in keywords]
