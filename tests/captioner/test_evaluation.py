"""The scene-truth metrics score what they claim to."""

from __future__ import annotations

import numpy as np

from captioner.dataset import Example
from captioner.generated import Generated
from captioner.evaluation import coco_scores, evaluate_split
from captioner.grammar import captions
from captioner.scenes import Scene, SceneObject

SCENE = Scene(
    style="illustration", background="gray",
    objects=(SceneObject("circle", "red", "large", 20, 30, 15), SceneObject("star", "blue", "small", 70, 30, 8),
             SceneObject("star", "blue", "small", 70, 70, 8)),
)


def examples(n: int = 4) -> list[Example]:
    return [
        Example(i, None, {lang: captions(SCENE, lang, 5, i) for lang in ("en", "ko")}, SCENE.style, SCENE)  # type: ignore[arg-type]
        for i in range(n)
    ]


def fixed(text_en: str, text_ko: str):
    def caption(pixels, languages):
        return [Generated(text_en if lang == "en" else text_ko, (), 1.0) for lang in languages]

    return caption


def test_a_correct_caption_scores_perfectly_on_scene_metrics() -> None:
    report = evaluate_split(
        fixed("an illustration of a large red circle and two small blue stars", "큰 빨간 원 한 개와 작은 파란 별 두 개가 있는 일러스트"),
        examples(), np.zeros((4, 3, 96, 96), np.uint8), ["en", "ko"],
    )
    for language in ("en", "ko"):
        metrics = report[language]["all"]
        assert metrics["binding_f1"] == 1.0 and metrics["count_accuracy"] == 1.0
        assert metrics["keyword_precision"] == 1.0 and metrics["keyword_recall"] == 1.0
        assert metrics["bleu4"] > 0.3  # (CIDEr needs varied images: its idf is zero here)
    assert set(report["en"]) >= {"all", "illustration", "samples"}


def test_swapped_attributes_are_caught_by_binding_not_by_keywords_of_words() -> None:
    # Same words, wrong binding: red star and blue circle instead of red circle and blue stars.
    report = evaluate_split(
        fixed("an illustration of a large red star and two small blue circles", "큰 빨간 별 한 개와 작은 파란 원 두 개가 있는 일러스트"),
        examples(), np.zeros((4, 3, 96, 96), np.uint8), ["en", "ko"],
    )
    for language in ("en", "ko"):
        metrics = report[language]["all"]
        assert metrics["binding_f1"] == 0.0
        assert metrics["count_accuracy"] == 1.0  # three objects, as in the scene
        assert metrics["keyword_precision"] == round(1 / 3, 4)  # only the style keyword is right


def test_wrong_count_lowers_count_accuracy_and_f1() -> None:
    report = evaluate_split(
        fixed("an illustration of a large red circle and three small blue stars", "큰 빨간 원 한 개와 작은 파란 별 세 개가 있는 일러스트"),
        examples(), np.zeros((4, 3, 96, 96), np.uint8), ["en", "ko"],
    )
    metrics = report["en"]["all"]
    assert metrics["count_accuracy"] == 0.0
    assert round(metrics["binding_f1"], 4) == round(2 * 3 / (2 * 3 + 1 + 0), 4)


def test_coco_scores_reward_matching_references() -> None:
    refs = {1: ["a red circle on a gray background", "a picture of a red circle"], 2: ["two blue stars", "a photo of two blue stars"]}
    good = coco_scores({1: "a red circle on a gray background", 2: "two blue stars"}, refs)
    bad = coco_scores({1: "two blue stars", 2: "a red circle on a gray background"}, refs)
    assert good["cider"] > bad["cider"] and good["bleu4"] > bad["bleu4"]
