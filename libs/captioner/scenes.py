"""Structured scenes: 1-4 objects with shape, colour, size and position, sampled from a seed."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import asdict, dataclass, field

from captioner.vocabulary import BACKGROUNDS, COLOURS, RGB, SHAPES, SIZES, STYLES

CANVAS = 96
RADIUS = {"small": (7.0, 9.0), "large": (13.0, 16.0)}


@dataclass(frozen=True)
class SceneObject:
    """One shape on the canvas; (x, y) is its centre in pixels."""

    shape: str
    colour: str
    size: str
    x: float
    y: float
    radius: float
    rotation: float = 0.0


@dataclass(frozen=True)
class Scene:
    """Everything an image shows, the ground truth of its captions."""

    style: str
    background: str
    objects: tuple[SceneObject, ...]
    width: int = CANVAS
    height: int = CANVAS

    def groups(self) -> list[tuple[str, str, str, int]]:
        """(size, colour, shape, count) per distinct object kind, left to right by first appearance."""
        counts: dict[tuple[str, str, str], list[float]] = {}
        for obj in self.objects:
            counts.setdefault((obj.size, obj.colour, obj.shape), []).append(obj.x)
        ordered = sorted(counts.items(), key=lambda item: min(item[1]))
        return [(size, colour, shape, len(xs)) for (size, colour, shape), xs in ordered]

    def kind_counts(self) -> Counter[tuple[str, str, str]]:
        """Multiset of (size, colour, shape): what a correct caption states."""
        return Counter((obj.size, obj.colour, obj.shape) for obj in self.objects)

    def to_dict(self) -> dict:
        """JSON-ready form (stored in the COCO image entry)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        """Inverse of ``to_dict``."""
        objects = tuple(SceneObject(**obj) for obj in data["objects"])
        return cls(style=data["style"], background=data["background"], objects=objects, width=data["width"], height=data["height"])


@dataclass(frozen=True)
class CompositionRule:
    """Which colour+shape pairs and style x shape combinations a split may (not) contain."""

    held_out_pairs: frozenset[tuple[str, str]] = frozenset()
    held_out_style_shape: frozenset[tuple[str, str]] = frozenset()
    require_novel: bool = False  # every scene must contain at least one held-out combination

    def allows(self, style: str, colour: str, shape: str) -> bool:
        return (colour, shape) not in self.held_out_pairs and (style, shape) not in self.held_out_style_shape

    def is_novel(self, style: str, colour: str, shape: str) -> bool:
        return not self.allows(style, colour, shape)


# Our zero-shot test: these never occur in training.
NOVEL_PAIRS = frozenset({("red", "star"), ("blue", "triangle"), ("green", "circle"), ("yellow", "square"), ("purple", "star")})
NOVEL_STYLE_SHAPE = frozenset({("lineart", "triangle")})


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return math.dist(a, b)


@dataclass
class SceneSampler:
    """Samples scenes deterministically from a seed under a composition rule."""

    seed: int
    rule: CompositionRule = field(default_factory=CompositionRule)
    max_objects: int = 4
    duplicate_probability: float = 0.25

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def sample(self) -> Scene:
        rng = self._rng
        while True:
            style = rng.choice(STYLES)
            background = rng.choice(tuple(BACKGROUNDS))
            count = rng.randint(1, self.max_objects)
            kinds: list[tuple[str, str, str]] = []
            for _ in range(count):
                if kinds and rng.random() < self.duplicate_probability:
                    kinds.append(rng.choice(kinds))
                    continue
                kinds.append(self._kind(style, background, force_novel=self.rule.require_novel and not kinds))
            if any(kind is None for kind in kinds):
                continue
            objects = self._place(kinds)
            if objects is None:
                continue
            if self.rule.require_novel and not any(self.rule.is_novel(style, c, s) for _, c, s in kinds):
                continue
            return Scene(style=style, background=background, objects=tuple(objects))

    def _kind(self, style: str, background: str, force_novel: bool) -> tuple[str, str, str] | None:
        rng = self._rng
        for _ in range(50):
            size, colour, shape = rng.choice(SIZES), rng.choice(COLOURS), rng.choice(SHAPES)
            if _contrast(RGB[colour], BACKGROUNDS[background]) < 110:
                continue
            novel = self.rule.is_novel(style, colour, shape)
            if force_novel and not novel:
                continue
            if not force_novel and novel and not self.rule.require_novel:
                continue
            return size, colour, shape
        return None

    def _place(self, kinds: list[tuple[str, str, str]]) -> list[SceneObject] | None:
        rng = self._rng
        placed: list[SceneObject] = []
        for size, colour, shape in kinds:
            low, high = RADIUS[size]
            radius = rng.uniform(low, high)
            for _ in range(100):
                x = rng.uniform(radius + 2, CANVAS - radius - 2)
                y = rng.uniform(radius + 2, CANVAS - radius - 2)
                if all(math.dist((x, y), (o.x, o.y)) > radius + o.radius + 3 for o in placed):
                    rotation = rng.uniform(-20, 20) if shape in ("square", "triangle", "star") else 0.0
                    placed.append(SceneObject(shape, colour, size, round(x, 2), round(y, 2), round(radius, 2), round(rotation, 2)))
                    break
            else:
                return None
        return placed
