"""Grounded captions from hand-built findings: counts, agreement, scenes, text, and saying less when unsure."""

from __future__ import annotations

import numpy as np
import pytest

from perception.grounded import (
    GENERIC_SCORE,
    TEXT_MAX_CHARS,
    Findings,
    Tag,
    TextLine,
    describe,
    group_detections,
    indefinite_article,
    keywords,
    tags_from_probabilities,
)
from perception.labels import coco_labels, imagenet_label, imagenet_labels

WIDTH, HEIGHT = 640, 480
PERSON, BICYCLE, CAR, TRAFFIC_LIGHT, DOG, HORSE, CAT, CUP = 0, 1, 2, 9, 16, 17, 15, 41
TABBY, TIGER_CAT, EGYPTIAN_CAT, GOLDEN_RETRIEVER, PALACE, MONASTERY = 281, 282, 285, 207, 698, 663
SEASHORE, SANDBAR, ALP, VALLEY, MISSILE, PROJECTILE, ESPRESSO, GROOM = 978, 977, 970, 979, 657, 744, 967, 982


def detections(*boxes: tuple[int, float, float, float, float, float]):
    """Objects from (class, score, x1, y1, x2, y2) with relative corners, through the real grouping."""
    rows = [[x1 * WIDTH, y1 * HEIGHT, x2 * WIDTH, y2 * HEIGHT, score, cls] for cls, score, x1, y1, x2, y2 in boxes]
    return group_detections(np.array(rows, dtype=np.float32).reshape(-1, 6), WIDTH, HEIGHT)


def tags(*scores: tuple[int, float]):
    return tuple(Tag.for_class(index, score) for index, score in scores)


def both(findings: Findings):
    return describe(findings, "en"), describe(findings, "ko")


# --- grouping and tags ----------------------------------------------------------------


def test_group_detections_counts_orders_and_clips():
    rows = np.array(
        [
            [10, 10, 100, 100, 0.9, CAR],
            [0, 0, 0, 0, 0.0, 0],  # padding
            [300, 200, 700, 500, 0.8, HORSE],  # runs past the right and bottom edges
            [100, 100, 300, 400, 0.6, HORSE],
            [50, 50, 60, 60, 0.2, DOG],  # below the threshold
        ],
        dtype=np.float32,
    )
    groups = group_detections(rows, WIDTH, HEIGHT)
    assert [(group.label, group.label_ko, group.count) for group in groups] == [("horse", "말", 2), ("car", "자동차", 1)]
    horse = groups[0]
    assert horse.score == pytest.approx(0.8)
    assert [box.score for box in horse.boxes] == sorted((box.score for box in horse.boxes), reverse=True)
    clipped = horse.boxes[0]
    assert clipped.x == pytest.approx(300 / WIDTH) and clipped.x + clipped.width == pytest.approx(1.0)
    assert clipped.y + clipped.height == pytest.approx(1.0)


def test_group_detections_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        group_detections(np.zeros((3, 5)), WIDTH, HEIGHT)
    with pytest.raises(ValueError, match="COCO class"):
        group_detections(np.array([[0, 0, 10, 10, 0.9, 80]]), WIDTH, HEIGHT)
    with pytest.raises(ValueError, match="positive"):
        group_detections(np.zeros((0, 6)), 0, HEIGHT)


def test_tags_from_probabilities():
    probabilities = np.full(1000, 0.0001, dtype=np.float32)
    probabilities[[TABBY, TIGER_CAT, EGYPTIAN_CAT, PALACE]] = [0.5, 0.3, 0.1, 0.04]
    found = tags_from_probabilities(probabilities)
    assert [(tag.index, tag.label, tag.noun, tag.noun_ko) for tag in found] == [
        (TABBY, "tabby cat", "cat", "고양이"),
        (TIGER_CAT, "tiger cat", "cat", "고양이"),
        (EGYPTIAN_CAT, "Egyptian cat", "cat", "고양이"),
    ]
    assert len(tags_from_probabilities(probabilities, k=2)) == 2
    with pytest.raises(ValueError, match="1000"):
        tags_from_probabilities(np.zeros(10))


# --- captions ---------------------------------------------------------------------------


def test_one_cat_refined_by_the_classifier():
    en, ko = both(Findings(detections((CAT, 0.9, 0.1, 0.1, 0.8, 0.9)), tags((TABBY, 0.6), (TIGER_CAT, 0.3))))
    assert en.text == "a photo of a tabby cat"
    assert ko.text == "얼룩고양이 한 마리가 있는 사진"
    assert en.score == pytest.approx(0.9)


def test_one_cat_without_agreement_uses_the_general_noun():
    en, ko = both(Findings(detections((CAT, 0.7, 0.1, 0.1, 0.8, 0.9))))
    assert en.text == "a photo of a cat"
    assert ko.text == "고양이 한 마리가 있는 사진"


def test_two_horses_and_a_person():
    findings = Findings(detections((HORSE, 0.8, 0, 0.2, 0.4, 0.9), (HORSE, 0.7, 0.5, 0.2, 0.9, 0.9), (PERSON, 0.6, 0.42, 0.3, 0.5, 0.7)))
    en, ko = both(findings)
    assert en.text == "a photo of two horses with a person"
    assert ko.text == "말 두 마리와 사람 한 명이 있는 사진"


def test_person_dog_and_bicycle_main_subject_first():
    findings = Findings(detections((DOG, 0.8, 0.6, 0.5, 0.8, 0.9), (PERSON, 0.9, 0.3, 0.1, 0.6, 0.9), (BICYCLE, 0.6, 0.0, 0.4, 0.3, 0.9)))
    en, ko = both(findings)
    assert en.text.startswith("a photo of a person with ")
    assert "a dog" in en.text and "a bicycle" in en.text
    assert ko.text.startswith("사람 한 명, ") and ko.text.endswith("있는 사진")
    assert "개 한 마리" in ko.text and "자전거 한 대" in ko.text


def test_at_most_three_kinds_are_named():
    findings = Findings(
        detections(
            (PERSON, 0.9, 0.0, 0.0, 0.5, 0.9),
            (DOG, 0.8, 0.5, 0.5, 0.8, 0.9),
            (BICYCLE, 0.7, 0.0, 0.5, 0.3, 0.9),
            (CUP, 0.6, 0.9, 0.9, 0.95, 0.95),
        )
    )
    en, ko = both(findings)
    assert "cup" not in en.text and "컵" not in ko.text
    assert "cup" in en.keywords and "컵" in ko.keywords  # still found, so still searchable


def test_classifier_only_palace():
    en, ko = both(Findings((), tags((PALACE, 0.62), (MONASTERY, 0.1))))
    assert en.text == "a photo of a palace"
    assert ko.text == "궁전이 있는 사진"
    assert en.score == pytest.approx(0.62)


def test_classifier_names_what_the_detector_cannot():
    weak = detections((TRAFFIC_LIGHT, 0.4, 0.45, 0.1, 0.5, 0.2))
    assert weak[0].label == "traffic light"  # reported, but too unsure to be named
    en, ko = both(Findings(weak, tags((MISSILE, 0.55), (PROJECTILE, 0.3))))
    assert en.text == "a photo of a rocket"
    assert ko.text == "로켓이 있는 사진"
    assert en.score == pytest.approx(0.85)  # both classes say rocket
    en, ko = both(Findings(detections((PERSON, 0.9, 0.1, 0.5, 0.2, 0.9)), tags((MISSILE, 0.7))))
    assert en.text == "a photo of a person with a rocket"
    assert ko.text == "사람 한 명과 로켓이 있는 사진"


def test_classifier_kind_when_no_class_is_sure():
    findings = Findings((), tags((442, 0.29), (449, 0.16), (PALACE, 0.08), (483, 0.06)))  # bell tower, boathouse, castle
    en, ko = both(findings)
    assert en.text == "a photo of a building"
    assert ko.text == "건물이 있는 사진"
    assert en.score == pytest.approx(0.59)


def test_unsure_specific_name_keeps_the_detectors_noun():
    findings = Findings(detections((3, 0.96, 0.1, 0.1, 0.9, 0.9)), tags((665, 0.49), (670, 0.34)))  # moped, motor scooter
    en, ko = both(findings)
    assert en.text == "a photo of a motorcycle"
    assert ko.text == "오토바이 한 대가 있는 사진"
    assert {"moped", "motor scooter"} <= set(en.keywords)


def test_classifier_does_not_rename_a_detected_thing_of_the_same_kind():
    en, _ = both(Findings(detections((DOG, 0.6, 0.1, 0.1, 0.8, 0.9)), tags((292, 0.8))))  # tiger
    assert en.text == "a photo of a dog"


def test_drink_beside_its_cup():
    en, ko = both(Findings(detections((CUP, 0.7, 0.3, 0.3, 0.6, 0.8)), tags((ESPRESSO, 0.62))))
    assert en.text == "a photo of a cup with coffee"
    assert ko.text == "컵 한 개와 커피가 있는 사진"


def test_confident_scene():
    en, ko = both(Findings(detections((DOG, 0.85, 0.3, 0.3, 0.6, 0.8)), tags((SEASHORE, 0.45), (SANDBAR, 0.1))))
    assert en.text == "a photo of a dog on a beach"
    assert ko.text == "해변에 개 한 마리가 있는 사진"


def test_scene_alone():
    en, ko = both(Findings((), tags((ALP, 0.55), (VALLEY, 0.2))))
    assert en.text == "a photo of a mountain"
    assert ko.text == "산 사진"


def test_text_lines():
    lines = (TextLine("OPEN", 0.93), TextLine("24 HOURS", 0.88), TextLine("qz#x", 0.2))
    en, ko = both(Findings((), (), lines))
    assert en.text == "a photo with the text “OPEN 24 HOURS”"
    assert ko.text == "“OPEN 24 HOURS”라는 글자가 있는 사진"
    en, ko = both(Findings(detections((PERSON, 0.8, 0.2, 0.1, 0.6, 0.9)), (), (TextLine("카페 영업중", 0.9),)))
    assert en.text == "a photo of a person, with the text “카페 영업중”"
    assert ko.text == "사람 한 명과 “카페 영업중”이라는 글자가 있는 사진"


def test_long_text_is_quoted_briefly():
    line = TextLine("the quick brown fox jumps over the lazy dog again and again", 0.9)
    en = describe(Findings((), (), (line,)), "en")
    quoted = en.text.split("“")[1].rstrip("”")
    assert quoted.endswith("…") and len(quoted) <= TEXT_MAX_CHARS + 1
    assert line.text.startswith(quoted[:-1])


def test_nothing_confident_says_less():
    findings = Findings(
        detections((CAR, 0.2, 0, 0, 0.1, 0.1)), tags((600, 0.08), (700, 0.07)), (TextLine("unsure", 0.3),)
    )
    en, ko = both(findings)
    named = {"car", "hook", "paper towel", "unsure", "자동차", "갈고리", "종이 타월"}
    assert not any(word in en.text or word in ko.text for word in named)
    assert en.score == ko.score == GENERIC_SCORE
    assert en.text == "a photo with no recognised objects"
    assert ko.text == "인식된 물체가 없는 사진"
    assert describe(Findings(), "en").text == en.text


def test_people_are_not_named_by_gender():
    en, ko = both(Findings(detections((PERSON, 0.9, 0.2, 0.1, 0.6, 0.9)), tags((GROOM, 0.8))))
    assert en.text == "a photo of a person" and ko.text == "사람 한 명이 있는 사진"
    assert "groom" not in en.keywords and "신랑" not in ko.keywords
    en = describe(Findings((), tags((GROOM, 0.8))), "en")
    assert en.text == "a photo of a person"


def test_english_and_korean_name_the_same_things():
    cases = [
        Findings(detections((CAT, 0.9, 0.1, 0.1, 0.8, 0.9)), tags((TABBY, 0.5))),
        Findings(detections((HORSE, 0.8, 0, 0.2, 0.4, 0.9), (PERSON, 0.6, 0.42, 0.3, 0.5, 0.7)), tags((SEASHORE, 0.4))),
        Findings(detections((CUP, 0.7, 0.3, 0.3, 0.6, 0.8)), tags((ESPRESSO, 0.62))),
        Findings((), tags((PALACE, 0.62))),
    ]
    for findings in cases:
        en, ko = both(findings)
        names = [(group.label, group.label_ko) for group in findings.objects]
        names += [(tag.noun, tag.noun_ko) for tag in findings.tags]
        for name_en, name_ko in names:
            assert (name_en in en.text or name_en in " ".join(en.keywords)) == (name_ko in ko.text or name_ko in ko.keywords)
        assert en.score == ko.score


def test_every_class_can_be_captioned():
    for label in imagenet_labels():
        en, ko = both(Findings((), tags((label.index, 0.9))))
        if label.kind == "scene":
            assert label.noun_en in en.text and ko.text == f"{label.noun_ko} 사진"
        else:
            assert en.text.endswith(label.noun_en) and ko.text.startswith(label.noun_ko)
    for label in coco_labels():
        rows = np.array([[10, 10, 200, 200, 0.9, label.index], [300, 100, 500, 400, 0.8, label.index]], dtype=np.float32)
        en, ko = both(Findings(group_detections(rows, WIDTH, HEIGHT)))
        assert (label.plural_en if label.countable else label.noun_en) in en.text
        assert f"{label.noun_ko} 두 {label.counter_ko}" in ko.text


@pytest.mark.parametrize(
    ("phrase", "article"),
    [("umbrella", "an"), ("unicycle", "a"), ("upright piano", "an"), ("one-piece swimsuit", "a"), ("European robin", "a"),
     ("Egyptian cat", "an"), ("hour", "an"), ("ATM", "an"), ("TV", "a"), ("iPod", "an"), ("T-shirt", "a"), ("horse", "a")],
)  # fmt: skip
def test_indefinite_article(phrase, article):
    assert indefinite_article(phrase) == article


def test_unknown_language_is_refused():
    with pytest.raises(ValueError, match="language"):
        describe(Findings(), "fr")
    assert describe(Findings((), tags((PALACE, 0.62))), "ko-KR").text == "궁전이 있는 사진"


# --- keywords ---------------------------------------------------------------------------


def test_keywords_general_and_specific_names():
    findings = Findings(detections((CAT, 0.9, 0.1, 0.1, 0.8, 0.9)), tags((TABBY, 0.6), (TIGER_CAT, 0.3)))
    assert keywords(findings, "en")[:2] == ["cat", "tabby cat"]
    assert "tiger cat" in keywords(findings, "en")
    assert keywords(findings, "ko")[:2] == ["고양이", "얼룩고양이"]


def test_keywords_scene_text_order_and_limit():
    findings = Findings(
        detections((DOG, 0.85, 0.3, 0.3, 0.6, 0.8)),
        tags((SEASHORE, 0.45), (GOLDEN_RETRIEVER, 0.3)),
        (TextLine("Beach Café OPEN", 0.9), TextLine("a", 0.9)),
    )
    words = keywords(findings, "en")
    assert words[0] == "dog" and "golden retriever" in words
    assert {"beach", "seashore", "café", "open"} <= set(words)
    assert "a" not in words
    assert words.index("dog") < words.index("beach") < words.index("open")
    assert len(words) == len(set(words))
    ko = keywords(findings, "ko")
    assert {"개", "골든 리트리버", "해변", "바닷가", "café", "open"} <= set(ko)
    assert len(keywords(findings, "en", limit=3)) == 3


def test_keywords_of_nothing_confident():
    findings = Findings(detections((CAR, 0.2, 0, 0, 0.1, 0.1)), tags((600, 0.08)), (TextLine("unsure", 0.3),))
    assert keywords(findings, "en") == keywords(findings, "ko") == []


def test_keywords_use_the_korean_table_names():
    words = keywords(Findings((), tags((imagenet_label(PALACE).index, 0.62))), "ko")
    assert words == ["궁전"]
