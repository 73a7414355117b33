"""Captions (English and Korean) with paraphrase variety, and keywords/hashtags, from a Scene."""

from __future__ import annotations

import random

from captioner.keywords import kind_keyword, style_keyword
from captioner.scenes import Scene
from captioner.vocabulary import (
    EN_COUNTS,
    EN_SIZE_WORDS,
    EN_STYLE_PREFIXES,
    KO_BACKGROUNDS,
    KO_COLOURS,
    KO_COUNTS,
    KO_SHAPES,
    KO_SIZES,
    KO_STYLE_SUFFIXES,
    KO_STYLES,
)



def _en_group(size: str, colour: str, shape: str, count: int, rng: random.Random) -> str:
    size_word = rng.choice(EN_SIZE_WORDS[size])
    return f"{EN_COUNTS[count]} {size_word} {colour} {shape}{'s' if count > 1 else ''}"


def _en_join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def caption_en(scene: Scene, rng: random.Random, canonical: bool = False) -> str:
    """One English caption; ``canonical`` gives the fixed first paraphrase."""
    groups = scene.groups()
    if canonical:
        parts = [f"{EN_COUNTS[n]} {EN_SIZE_WORDS[s][0]} {c} {sh}{'s' if n > 1 else ''}" for s, c, sh, n in groups]
        return f"{EN_STYLE_PREFIXES[scene.style][0]} {_en_join(parts)} on a {scene.background} background"
    if rng.random() < 0.3:
        groups = groups[::-1]
    parts = [_en_group(*group, rng) for group in groups]
    prefix = rng.choice(EN_STYLE_PREFIXES[scene.style])
    if len(parts) == 2 and rng.random() < 0.3:
        body = f"{parts[0]} next to {parts[1]}"
    else:
        body = _en_join(parts)
    background = rng.choice((f" on a {scene.background} background", f" against a {scene.background} background", ""))
    return f"{prefix} {body}{background}"


def _ko_group(size: str, colour: str, shape: str, count: int) -> str:
    return f"{KO_SIZES[size]} {KO_COLOURS[colour]} {KO_SHAPES[shape]} {KO_COUNTS[count]} 개"


def caption_ko(scene: Scene, rng: random.Random, canonical: bool = False) -> str:
    """One Korean caption; ``canonical`` gives the fixed first paraphrase."""
    groups = scene.groups()
    if not canonical and rng.random() < 0.3:
        groups = groups[::-1]
    parts = [_ko_group(*group) for group in groups]
    background = KO_BACKGROUNDS[scene.background]
    style = KO_STYLES[scene.style]
    template = 0 if canonical else rng.randrange(3)
    if template == 0:
        return f"{background} 배경에 {'와 '.join(parts)}가 있는 {style}"
    if template == 1:
        return f"{rng.choice(KO_STYLE_SUFFIXES[scene.style])}: {', '.join(parts)}"
    return f"{'와 '.join(parts)}가 있는 {background} 배경의 {style}"


def captions(scene: Scene, language: str, count: int, seed: int) -> list[str]:
    """``count`` distinct-as-possible captions in ``language``; the first is canonical."""
    rng = random.Random(seed)
    make = caption_en if language == "en" else caption_ko
    result = [make(scene, rng, canonical=True)]
    attempts = 0
    while len(result) < count and attempts < count * 10:
        attempts += 1
        text = make(scene, rng)
        if text not in result or attempts > count * 5:
            result.append(text)
    return result


def keywords(scene: Scene, language: str) -> list[str]:
    """Search keywords of a scene: each colour+shape kind, then the style."""
    kinds = []
    for _, colour, shape, _ in scene.groups():
        word = kind_keyword(colour, shape, language)
        if word not in kinds:
            kinds.append(word)
    return kinds + [style_keyword(scene.style, language)]

