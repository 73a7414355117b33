"""The label tables: complete, in class order, with Korean names and counters a speaker would use."""

from __future__ import annotations

import dataclasses
import re

import pytest

from perception import labels
from perception.labels import COUNTERS, KINDS, coco_label, coco_labels, imagenet_label, imagenet_labels, table_problems

HANGUL = re.compile("[가-힣]")


def test_tables_have_no_problems():
    assert table_problems() == []


def test_row_counts_and_contiguous_indices():
    assert [label.index for label in imagenet_labels()] == list(range(1000))
    assert [label.index for label in coco_labels()] == list(range(80))


def test_every_cell_filled_and_korean_cells_are_hangul():
    for label in imagenet_labels():
        for field in dataclasses.fields(label):
            if field.name not in ("coco", "scene_en", "scene_ko"):
                assert getattr(label, field.name) != "", (label.index, field.name)
        assert HANGUL.search(label.tag_ko) and HANGUL.search(label.noun_ko), label
    for label in coco_labels():
        assert all(getattr(label, field.name) != "" for field in dataclasses.fields(label)), label
        assert HANGUL.search(label.noun_ko), label


def test_counters_and_kinds_come_from_the_allowed_sets():
    for label in (*imagenet_labels(), *coco_labels()):
        assert label.counter_ko in COUNTERS, label
        assert label.kind in KINDS, label


def test_torchvision_order_spot_checks():
    # torchvision made the duplicate WordNet names unique ("crane bird", "maillot tank suit").
    expected = {0: "tench", 134: "crane bird", 281: "tabby", 517: "crane", 638: "maillot", 639: "maillot tank suit", 999: "toilet tissue"}
    assert {index: imagenet_label(index).imagenet for index in expected} == expected


@pytest.mark.parametrize(
    ("index", "tag_en", "noun_en", "noun_ko", "counter_ko", "kind"),
    [
        (281, "tabby cat", "cat", "고양이", "마리", "animal"),
        (207, "golden retriever", "dog", "개", "마리", "animal"),
        (967, "espresso", "coffee", "커피", "잔", "drink"),
        (985, "daisy", "flower", "꽃", "송이", "plant"),
        (698, "palace", "palace", "궁전", "채", "building"),
        (665, "moped", "motorcycle", "오토바이", "대", "vehicle"),
        (978, "seashore", "beach", "해변", "곳", "scene"),
        (983, "scuba diver", "person", "사람", "명", "person"),
    ],
)
def test_imagenet_spot_checks(index, tag_en, noun_en, noun_ko, counter_ko, kind):
    label = imagenet_label(index)
    assert (label.tag_en, label.noun_en, label.noun_ko, label.counter_ko, label.kind) == (tag_en, noun_en, noun_ko, counter_ko, kind)


def test_dog_breeds_are_dogs_the_detector_calls_dog():
    breeds = [imagenet_label(index) for index in range(151, 269)]
    assert {(label.noun_en, label.noun_ko, label.counter_ko, label.coco) for label in breeds} == {("dog", "개", "마리", "dog")}


def test_scenes_have_location_phrases():
    seashore, library = imagenet_label(978), imagenet_label(624)
    assert (seashore.scene_en, seashore.scene_ko) == ("on a beach", "해변에")
    assert (library.kind, library.scene_en, library.scene_ko) == ("scene", "in a library", "도서관에")
    assert imagenet_label(281).scene_en == ""


def test_mass_nouns_repeat_their_plural():
    espresso = imagenet_label(967)
    assert not espresso.countable and espresso.plural_en == "coffee"
    assert imagenet_label(281).countable and imagenet_label(281).plural_en == "cats"


@pytest.mark.parametrize(
    ("index", "darknet", "noun_en", "noun_ko", "counter_ko"),
    [
        (0, "person", "person", "사람", "명"),
        (3, "motorbike", "motorcycle", "오토바이", "대"),
        (4, "aeroplane", "airplane", "비행기", "대"),
        (57, "sofa", "couch", "소파", "개"),
        (58, "pottedplant", "potted plant", "화분", "개"),
        (60, "diningtable", "dining table", "식탁", "개"),
        (62, "tvmonitor", "TV", "텔레비전", "대"),
        (79, "toothbrush", "toothbrush", "칫솔", "개"),
    ],
)
def test_coco_spot_checks(index, darknet, noun_en, noun_ko, counter_ko):
    label = coco_label(index)
    assert (label.coco, label.noun_en, label.noun_ko, label.counter_ko) == (darknet, noun_en, noun_ko, counter_ko)
    assert coco_label(0).plural_en == "people"


def test_out_of_range_indices_are_refused():
    with pytest.raises(ValueError, match="outside"):
        imagenet_label(1000)
    with pytest.raises(ValueError, match="outside"):
        coco_label(-1)


def test_problems_are_reported(monkeypatch):
    broken = list(imagenet_labels())
    broken[5] = dataclasses.replace(broken[5], noun_ko="ray", counter_ko="pieces")
    broken[7] = dataclasses.replace(broken[7], index=70)
    monkeypatch.setattr(labels, "imagenet_labels", lambda: tuple(broken))
    problems = table_problems()
    assert any("row 5: noun_ko 'ray' has no Hangul" in problem for problem in problems)
    assert any("row 5: counter 'pieces'" in problem for problem in problems)
    assert any("index out of order at position 7" in problem for problem in problems)
