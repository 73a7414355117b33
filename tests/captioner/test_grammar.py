"""Captions in English and Korean state exactly the scene; keywords follow from them."""

from __future__ import annotations

import pytest

from captioner.grammar import captions, keywords
from captioner.keywords import caption_keywords, hashtags
from captioner.parsing import parse_objects, parse_style
from captioner.scenes import SceneSampler


@pytest.mark.parametrize("language", ["en", "ko"])
def test_every_paraphrase_parses_back_to_the_scene(language: str) -> None:
    sampler = SceneSampler(11)
    distinct = 0
    for index in range(300):
        scene = sampler.sample()
        texts = captions(scene, language, 5, index)
        distinct += len(set(texts))
        for text in texts:
            assert parse_objects(text, language) == scene.kind_counts(), text
            assert parse_style(text, language) == scene.style, text
            assert set(caption_keywords(text, language)) == set(keywords(scene, language)), text
    assert distinct / 300 >= 3, "captions need paraphrase variety"


def test_examples_read_naturally() -> None:
    from captioner.scenes import Scene, SceneObject

    scene = Scene(
        style="photo", background="gray",
        objects=(SceneObject("circle", "red", "large", 20, 30, 15), SceneObject("star", "blue", "small", 70, 30, 8),
                 SceneObject("star", "blue", "small", 70, 70, 8)),
    )
    assert captions(scene, "en", 1, 0) == ["a photo of a large red circle and two small blue stars on a gray background"]
    assert captions(scene, "ko", 1, 0) == ["회색 배경에 큰 빨간 원 한 개와 작은 파란 별 두 개가 있는 사진"]
    assert keywords(scene, "en") == ["red circle", "blue star", "photo"]
    assert hashtags(keywords(scene, "ko")) == ["#빨간원", "#파란별", "#사진"]


def test_keywords_of_free_text_fall_back_to_content_words() -> None:
    assert caption_keywords("a man riding a horse on the beach", "en") == ["man", "riding", "horse", "beach"]
