"""Read the structured content back out of a caption: object kinds, counts, style.

Used by the scene-truth metrics (attribute binding, counts, keywords) and to derive
keywords from a generated caption.
"""

from __future__ import annotations

import re
from collections import Counter

from captioner.vocabulary import (
    COLOURS,
    EN_COUNTS,
    EN_SIZE_WORDS,
    KO_COLOURS,
    KO_COUNTS,
    KO_SHAPES,
    KO_SIZES,
    KO_STYLE_SUFFIXES,
    KO_STYLES,
    SHAPES,
)

Kind = tuple[str, str, str]  # (size, colour, shape)

_EN_SHAPES = {shape: shape for shape in SHAPES} | {shape + "s": shape for shape in SHAPES}
_EN_SIZES = {word: size for size, words in EN_SIZE_WORDS.items() for word in words}
_EN_COUNTS = {word: n for n, word in EN_COUNTS.items()} | {"an": 1, "one": 1}
_EN_STYLES = {
    "photo": "photo", "photograph": "photo", "picture": "photo",
    "illustration": "illustration", "cartoon": "illustration",
    "line": "lineart", "sketch": "lineart", "outline": "lineart",
}
_KO_SHAPES = {word: shape for shape, word in KO_SHAPES.items()}
_KO_COLOURS = {word: colour for colour, word in KO_COLOURS.items()}
_KO_SIZES = {word: size for size, word in KO_SIZES.items()}
_KO_COUNTS = {word: n for n, word in KO_COUNTS.items()}
_KO_STYLES = {word: style for style, word in KO_STYLES.items()} | {
    word: style for style, words in KO_STYLE_SUFFIXES.items() for word in words
}


def words(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode-aware, so Hangul words stay whole)."""
    return re.findall(r"\w+", text.lower())


def parse_objects(caption: str, language: str) -> Counter[Kind]:
    """Multiset of (size, colour, shape) the caption states, counts expanded."""
    tokens = words(caption)
    found: Counter[Kind] = Counter()
    if language == "en":
        for i, token in enumerate(tokens):
            shape = _EN_SHAPES.get(token)
            if shape is None:
                continue
            window = tokens[max(0, i - 3) : i]
            colour = next((w for w in reversed(window) if w in COLOURS), None)
            size = next((_EN_SIZES[w] for w in reversed(window) if w in _EN_SIZES), None)
            count = next((_EN_COUNTS[w] for w in reversed(window) if w in _EN_COUNTS), 1)
            found[(size or "?", colour or "?", shape)] += count
    else:
        for i, token in enumerate(tokens):
            shape = _KO_SHAPES.get(token)
            if shape is None:
                continue
            window = tokens[max(0, i - 2) : i]
            colour = next((_KO_COLOURS[w] for w in reversed(window) if w in _KO_COLOURS), None)
            size = next((_KO_SIZES[w] for w in reversed(window) if w in _KO_SIZES), None)
            after = tokens[i + 1 : i + 3]
            count = _KO_COUNTS.get(after[0], 1) if len(after) == 2 and after[1].startswith("개") else 1
            found[(size or "?", colour or "?", shape)] += count
    return found


def parse_style(caption: str, language: str) -> str | None:
    """The rendering style a caption names, if any."""
    table = _EN_STYLES if language == "en" else _KO_STYLES
    for token in words(caption):
        if token in table:
            return table[token]
    return None
