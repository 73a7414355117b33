"""Scene generation: deterministic, varied, and with a held-out zero-shot split."""

from __future__ import annotations

import hashlib
import math

from captioner.dataset import split_rules
from captioner.render import render
from captioner.scenes import NOVEL_PAIRS, NOVEL_STYLE_SHAPE, SceneSampler
from captioner.vocabulary import COLOURS, SHAPES, STYLES


def test_same_seed_same_scenes_and_pixels() -> None:
    a, b = SceneSampler(7), SceneSampler(7)
    for index in range(20):
        scene_a, scene_b = a.sample(), b.sample()
        assert scene_a == scene_b
        digest = lambda s: hashlib.sha256(render(s, index).tobytes()).hexdigest()  # noqa: E731
        assert digest(scene_a) == digest(scene_b)
    assert SceneSampler(8).sample() != SceneSampler(7).sample()


def test_scenes_cover_the_vocabulary_without_overlaps() -> None:
    sampler = SceneSampler(1)
    scenes = [sampler.sample() for _ in range(600)]
    objects = [o for s in scenes for o in s.objects]
    assert {o.shape for o in objects} == set(SHAPES)
    assert {o.colour for o in objects} == set(COLOURS)
    assert {s.style for s in scenes} == set(STYLES)
    assert {len(s.objects) for s in scenes} == {1, 2, 3, 4}
    assert any(count > 1 for s in scenes for *_, count in s.groups()), "counts above one must occur"
    for scene in scenes:
        for i, a in enumerate(scene.objects):
            assert a.radius <= a.x <= scene.width - a.radius and a.radius <= a.y <= scene.height - a.radius
            for b in scene.objects[i + 1 :]:
                assert math.dist((a.x, a.y), (b.x, b.y)) > a.radius + b.radius


def test_training_never_sees_the_novel_compositions_and_the_novel_split_always_does() -> None:
    rules = split_rules()
    train = SceneSampler(0, rules["train"])
    for _ in range(1500):
        scene = train.sample()
        for obj in scene.objects:
            assert (obj.colour, obj.shape) not in NOVEL_PAIRS
            assert (scene.style, obj.shape) not in NOVEL_STYLE_SHAPE
    novel = SceneSampler(2, rules["novel"])
    for _ in range(300):
        scene = novel.sample()
        assert any((o.colour, o.shape) in NOVEL_PAIRS or (scene.style, o.shape) in NOVEL_STYLE_SHAPE for o in scene.objects)


def test_three_styles_render_differently() -> None:
    scene = SceneSampler(3).sample()
    images = {}
    for style in STYLES:
        styled = type(scene)(style=style, background=scene.background, objects=scene.objects)
        image = render(styled, 0)
        assert image.size == (scene.width, scene.height) and image.mode == "RGB"
        images[style] = image.tobytes()
    assert len(set(images.values())) == 3
