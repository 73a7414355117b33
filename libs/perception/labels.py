"""The label tables of the classifier (ImageNet-1k) and the detector (COCO-80), in English and Korean.

``data/imagenet_labels.tsv`` and ``data/coco_labels.tsv`` hold, per class index, the names a
caption and its keywords use: a specific tag ("tabby cat", "얼룩고양이"), the general noun a
person would say ("cat", "고양이"), its English plural and whether it takes an article, the
Korean counter ("마리"), a kind, and for scenes a location phrase ("on a beach", "해변에").
Each file's header comment names where its class order comes from.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources

IMAGENET_CLASSES = 1000
COCO_CLASSES = 80
KINDS = frozenset(
    ("animal", "person", "vehicle", "food", "drink", "plant", "building", "scene", "object", "clothing", "instrument", "other")
)
# Korean counters the tables may use; each is the one a Korean speaker uses for that noun.
COUNTERS = frozenset(
    "마리 명 대 척 량 기 채 동 곳 그루 송이 포기 잔 병 그릇 판 개 벌 켤레 쌍 권 장 자루 정 롤 더미 덩이 뭉치".split()
)
_HANGUL = re.compile("[가-힣]")


@dataclass(frozen=True)
class ImagenetLabel:
    """One classifier class: its torchvision name and the names captions use."""

    index: int
    imagenet: str  # torchvision's _IMAGENET_CATEGORIES name, verbatim
    tag_en: str
    noun_en: str
    plural_en: str
    tag_ko: str
    noun_ko: str
    counter_ko: str
    kind: str
    countable: bool  # False: mass or plural-only noun ("coffee", "jeans"), no article and no count in English
    coco: str  # noun_en of the COCO class the detector reports this as; "" when it has none
    scene_en: str  # location phrase of a scene ("on a beach"); "" for other kinds
    scene_ko: str  # "해변에"; "" for other kinds


@dataclass(frozen=True)
class CocoLabel:
    """One detector class: its darknet name and the names captions use."""

    index: int
    coco: str  # darknet coco.names spelling, verbatim
    noun_en: str
    plural_en: str
    noun_ko: str
    counter_ko: str
    kind: str
    countable: bool


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files("perception").joinpath("data", filename).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True))


def _typed(cls, row: dict[str, str]):
    values = {}
    for field in fields(cls):
        value = row.get(field.name)
        if value is None:
            raise ValueError(f"{cls.__name__} row {row.get('index')!r} has no column {field.name!r}")
        if field.name == "index":
            values[field.name] = int(value)
        elif field.name == "countable":
            if value not in ("yes", "no"):
                raise ValueError(f"{cls.__name__} row {row['index']}: countable must be yes or no, not {value!r}")
            values[field.name] = value == "yes"
        else:
            values[field.name] = value
    return cls(**values)


@cache
def imagenet_labels() -> tuple[ImagenetLabel, ...]:
    """All ImageNet-1k labels in class-index order."""
    return tuple(_typed(ImagenetLabel, row) for row in _rows("imagenet_labels.tsv"))


@cache
def coco_labels() -> tuple[CocoLabel, ...]:
    """All COCO labels in the detector's class-index order."""
    return tuple(_typed(CocoLabel, row) for row in _rows("coco_labels.tsv"))


def imagenet_label(index: int) -> ImagenetLabel:
    """The ImageNet label of a classifier output index."""
    labels = imagenet_labels()
    if not 0 <= index < len(labels):
        raise ValueError(f"ImageNet class index {index} is outside 0..{len(labels) - 1}")
    return labels[index]


def coco_label(index: int) -> CocoLabel:
    """The COCO label of a detector class index."""
    labels = coco_labels()
    if not 0 <= index < len(labels):
        raise ValueError(f"COCO class index {index} is outside 0..{len(labels) - 1}")
    return labels[index]


def _common_problems(name: str, labels, expected: int, korean: tuple[str, ...]) -> list[str]:
    problems = []
    if len(labels) != expected:
        problems.append(f"{name}: {len(labels)} rows, expected {expected}")
    for position, label in enumerate(labels):
        where = f"{name} row {label.index}"
        if label.index != position:
            problems.append(f"{where}: index out of order at position {position}")
        for field in fields(label):
            value = getattr(label, field.name)
            if isinstance(value, str) and value != value.strip():
                problems.append(f"{where}: {field.name} has surrounding spaces")
        for column in korean:
            if not _HANGUL.search(getattr(label, column)):
                problems.append(f"{where}: {column} {getattr(label, column)!r} has no Hangul")
        if label.counter_ko not in COUNTERS:
            problems.append(f"{where}: counter {label.counter_ko!r} is not one of COUNTERS")
        if label.kind not in KINDS:
            problems.append(f"{where}: kind {label.kind!r} is not one of KINDS")
        if not label.countable and label.plural_en != label.noun_en:
            problems.append(f"{where}: an uncountable noun's plural_en must repeat noun_en")
    return problems


def table_problems() -> list[str]:
    """Every incomplete or inconsistent row of both tables; empty when they are sound."""
    imagenet, coco = imagenet_labels(), coco_labels()
    problems = _common_problems("imagenet", imagenet, IMAGENET_CLASSES, ("tag_ko", "noun_ko")) + _common_problems(
        "coco", coco, COCO_CLASSES, ("noun_ko",)
    )
    optional = {"coco", "scene_en", "scene_ko"}
    for label in imagenet:
        where = f"imagenet row {label.index}"
        problems += [f"{where}: {f.name} is empty" for f in fields(label) if f.name not in optional and getattr(label, f.name) == ""]
        is_scene = label.kind == "scene"
        if is_scene != bool(label.scene_en) or is_scene != bool(label.scene_ko):
            problems.append(f"{where}: scene phrases must be filled exactly for kind scene")
        if is_scene and not label.scene_ko.endswith("에"):
            problems.append(f"{where}: scene_ko {label.scene_ko!r} must be a locative ending in 에")
    problems += [f"coco row {label.index}: {f.name} is empty" for label in coco for f in fields(label) if getattr(label, f.name) == ""]
    coco_nouns = {label.noun_en for label in coco}
    if len(coco_nouns) != len(coco):
        problems.append("coco: noun_en values are not unique")
    problems += [
        f"imagenet row {label.index}: coco {label.coco!r} is no COCO noun_en"
        for label in imagenet
        if label.coco and label.coco not in coco_nouns
    ]
    return problems
