"""Moderation: the NudeNet classifier on real image bytes, the caption text checks and the verdict rules."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from captioning_events.v1.caption_pb2 import Caption
from captioning_events.v1.moderation_pb2 import Verdict
from perception.real_photos import REAL_PHOTOS
from services.moderation.image_classifier import (
    NUDITY_LABELS,
    ImageClassifier,
    ImageFinding,
    NoImageClassifier,
    decode_bgr,
    image_classifier_for,
)
from services.moderation.policy import decide
from services.moderation.settings import ModerationSettings
from services.moderation.text_policy import neutralise, profanity_scores, sensitive_attributes

# --- Image classifier ------------------------------------------------------------


def shapes_image(mode: str) -> Image.Image:
    """Coloured shapes on a background, converted to ``mode``."""
    image = Image.new("RGB", (320, 240), (240, 240, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((30, 30, 110, 110), fill=(220, 30, 30))
    draw.rectangle((150, 100, 290, 210), fill=(30, 60, 200))
    draw.polygon([(60, 220), (100, 140), (140, 220)], fill=(250, 210, 0))
    if mode == "RGBA":
        image.putalpha(Image.new("L", image.size, 200))
        return image
    return image.convert(mode)


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


IMAGES = [
    (mode, fmt)
    for mode in ("RGB", "RGBA", "L", "P")
    for fmt in ("PNG", "JPEG", "WEBP")
    if not (fmt == "JPEG" and mode in ("RGBA", "P"))  # JPEG cannot store these modes
]


@pytest.fixture(scope="module")
def nudenet() -> ImageClassifier:
    return image_classifier_for(ModerationSettings(image_classifier="nudenet"))


@pytest.mark.parametrize(("mode", "fmt"), IMAGES)
def test_nudenet_finds_no_nudity_in_shapes(nudenet: ImageClassifier, mode: str, fmt: str) -> None:
    findings = nudenet.classify(encode(shapes_image(mode), fmt))
    assert all(isinstance(f, ImageFinding) for f in findings)
    assert not [f for f in findings if f.label in NUDITY_LABELS]


def test_nudenet_is_safe_to_share_between_threads(nudenet: ImageClassifier) -> None:
    images = [encode(shapes_image(mode), fmt) for mode, fmt in IMAGES]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(nudenet.classify, images * 2)) == [nudenet.classify(image) for image in images * 2]


def photo_variants() -> list[np.ndarray]:
    """The real photos as BGR arrays, each also mirrored, cut to its top half and to its left half, and squeezed."""
    variants = []
    for photo in REAL_PHOTOS:
        bgr = np.ascontiguousarray(photo.pixels()[:, :, ::-1])
        height, width = bgr.shape[:2]
        variants += [bgr, bgr[:, ::-1], bgr[: height // 2], bgr[:, : width // 2], cv2.resize(bgr, (width // 3, height))]
    return [np.ascontiguousarray(variant) for variant in variants]


def test_nudenet_detects_what_the_package_detects(nudenet: ImageClassifier) -> None:
    from nudenet import NudeDetector

    package = NudeDetector()
    ours, theirs = [], []
    for pixels in photo_variants():  # tall and wide: the padding goes to either side
        ours.append([(d.label, round(d.score, 5), tuple(int(v) for v in d.box)) for d in nudenet.detect(pixels)])
        theirs.append([(d["class"], round(d["score"], 5), tuple(d["box"])) for d in package.detect(pixels)])
    assert ours == theirs
    assert sum(map(len, theirs)) >= 5 and len({d[0] for image in theirs for d in image}) >= 3, "too few detections to compare"


def test_nudenet_identifies_itself(nudenet: ImageClassifier) -> None:
    assert nudenet.name == "nudenet"
    assert nudenet.version.startswith("3.4.2")


@pytest.mark.parametrize("data", [b"", b"not an image at all", encode(shapes_image("RGB"), "PNG")[:300]])
def test_corrupt_bytes_raise_value_error(nudenet: ImageClassifier, data: bytes) -> None:
    with pytest.raises(ValueError, match="cannot decode image"):
        nudenet.classify(data)


def test_decoding_gives_bgr_for_every_mode() -> None:
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    assert decode_bgr(encode(red, "PNG"))[0, 0].tolist() == [0, 0, 255]
    for mode in ("RGBA", "L", "P", "LA", "1", "I;16"):
        array = decode_bgr(encode(red.convert(mode), "PNG"))
        assert array.shape == (8, 8, 3) and array.dtype.name == "uint8"
    transparent = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert decode_bgr(encode(transparent, "PNG"))[0, 0].tolist() == [255, 255, 255]  # what a viewer sees


def test_no_image_classifier_finds_nothing_and_nudenet_loads_only_when_chosen() -> None:
    classifier = image_classifier_for(ModerationSettings(image_classifier="none"))
    assert isinstance(classifier, NoImageClassifier)
    assert classifier.classify(b"anything") == []
    probe = "import sys, services.moderation.image_classifier; print('nudenet' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- Profanity --------------------------------------------------------------------


def test_profanity_scores() -> None:
    clean = ["two small red circles above a large blue square", "a yellow star on a white background", "작은 빨간 원 두 개"]
    profane_en, profane_ko = "what the fuck is this shit, you stupid bitch", "이 병신 같은 그림"
    *clean_scores, en_score, ko_score = profanity_scores([*clean, profane_en, profane_ko])
    assert all(score < 0.5 for score in clean_scores)
    assert en_score > 0.5
    assert ko_score == 1.0
    assert profanity_scores([]) == []


# --- Sensitive attributes ----------------------------------------------------------

NEGATIVES = [
    ("en", "two small red circles above a large blue square"),
    ("en", "a yellow star on a white background"),
    ("en", "a black square next to a white triangle"),
    ("en", "a brown dog on a green lawn"),
    ("en", "a straight line through a small circle"),
    ("en", "a man-made lake"),
    ("en", "a catholic church and a hindu temple"),
    ("en", "the human body drawn with a snowman"),
    ("ko", "작은 빨간 원 두 개"),
    ("ko", "흰 배경 위의 노란 별"),
    ("ko", "검은 사각형 옆의 하얀 삼각형"),
    ("ko", "어린이가 놀고 있다"),
    ("ko", "큰 게이트와 통신사 로고"),
    ("ko", "자동차 10대"),
]


@pytest.mark.parametrize(("language", "text"), NEGATIVES)
def test_shape_captions_are_not_sensitive(language: str, text: str) -> None:
    assert sensitive_attributes(text, language) == []
    assert neutralise(text, language) == text


POSITIVES = [
    ("en", "an asian man holding a cup", {"race_ethnicity", "gender"}),
    ("en", "a muslim woman", {"religion", "gender"}),
    ("en", "a muslim praying in a mosque", {"religion"}),
    ("en", "a gay couple on a bench", {"sexual_orientation"}),
    ("en", "a disabled person", {"health_disability"}),
    ("en", "a young woman", {"age", "gender"}),
    ("en", "a black man", {"race_ethnicity", "gender"}),
    ("en", "a middle-aged conservative voter", {"age", "political_opinion"}),
    ("en", "two liberal students", {"political_opinion"}),
    ("en", "she is holding a phone", {"gender"}),
    ("ko", "남자", {"gender"}),
    ("ko", "여자가 걷고 있다", {"gender"}),
    ("ko", "흑인", {"race_ethnicity"}),
    ("ko", "백인 남성", {"race_ethnicity", "gender"}),
    ("ko", "동양인 아이", {"race_ethnicity"}),
    ("ko", "무슬림 가족", {"religion"}),
    ("ko", "장애인 학생", {"health_disability"}),
    ("ko", "게이 커플", {"sexual_orientation"}),
    ("ko", "젊은 사람", {"age"}),
]


@pytest.mark.parametrize(("language", "text", "categories"), POSITIVES)
def test_attribute_guesses_are_found(language: str, text: str, categories: set[str]) -> None:
    findings = sensitive_attributes(text, language)
    assert {f.category for f in findings} == categories
    assert all(text[f.start : f.end] == f.term for f in findings)


def test_findings_carry_category_and_span() -> None:
    text = "a young asian woman holding a cup"
    assert [(f.category, f.term, f.start, f.end) for f in sensitive_attributes(text, "en")] == [
        ("age", "young", 2, 7),
        ("race_ethnicity", "asian", 8, 13),
        ("gender", "woman", 14, 19),
    ]


@pytest.mark.parametrize(
    ("language", "text", "neutral"),
    [
        ("en", "a young asian woman holding a cup", "a person holding a cup"),
        ("en", "an asian man holding a cup", "a person holding a cup"),
        ("en", "An elderly man walking his dog", "A person walking their dog"),
        ("en", "two black men playing basketball", "two people playing basketball"),
        ("en", "a gay couple next to a white square", "a couple next to a white square"),
        ("en", "an old couple and an elderly adult", "a couple and an adult"),
        ("en", "a little girl with her mother", "a child with their parent"),
        ("en", "a woman's hand next to a black circle", "a person's hand next to a black circle"),
        ("en", "she is smiling at him.", "they are smiling at them."),
        ("ko", "젊은 여자", "사람"),
        ("ko", "젊은 여자가 컵을 들고 있다", "사람이 컵을 들고 있다"),
        ("ko", "흑인 남자와 개", "사람과 개"),
        ("ko", "남자들이 빨간 공을 던진다", "사람들이 빨간 공을 던진다"),
        ("ko", "여자를 그린 그림", "사람을 그린 그림"),
        ("ko", "장애인 어린이는 웃는다", "어린이는 웃는다"),
    ],
)
def test_neutralise(language: str, text: str, neutral: str) -> None:
    assert neutralise(text, language) == neutral
    assert sensitive_attributes(neutral, language) == []


# --- Verdicts -----------------------------------------------------------------------

SETTINGS = ModerationSettings(
    nudity_review_score=0.3,
    nudity_reject_score=0.6,
    nudity_review_score_without_person=0.8,
    profanity_review_score=0.5,
    profanity_reject_score=0.9,
    sensitive_attribute_policy="neutralise",
)
PERSON = [(0.0, 0.0, 0.5, 1.0)]  # a person filling the left half
CLEAN = [
    Caption(language="en", text="a red circle above a blue square", keywords=["circle"], score=0.8),
    Caption(language="ko", text="파란 사각형 위의 빨간 원", hashtags=["#원"], score=0.7),
]


def nudity(score: float, label: str = "FEMALE_BREAST_EXPOSED", box=(0.1, 0.3, 0.2, 0.2)) -> ImageFinding:
    return ImageFinding(label=label, score=score, box=box)


def test_clean_item_is_approved_with_copies_of_its_captions() -> None:
    decision = decide(CLEAN, [], SETTINGS)
    assert decision.verdict == Verdict.VERDICT_APPROVE
    assert decision.reasons == []
    assert decision.captions == CLEAN
    assert all(released is not original for released, original in zip(decision.captions, CLEAN))


@pytest.mark.parametrize(
    ("score", "verdict"),
    [
        (0.1, Verdict.VERDICT_APPROVE),
        (0.3, Verdict.VERDICT_REVIEW),
        (0.59, Verdict.VERDICT_REVIEW),
        (0.6, Verdict.VERDICT_REJECT),
    ],
)
def test_nudity_thresholds(score: float, verdict: Verdict.ValueType) -> None:
    decision = decide(CLEAN, [nudity(0.05, "BUTTOCKS_EXPOSED"), nudity(score)], SETTINGS, PERSON)
    assert decision.verdict == verdict
    expected = [] if verdict == Verdict.VERDICT_APPROVE else [("image.nudity", "FEMALE_BREAST_EXPOSED")]
    assert [(r.code, r.detail) for r in decision.reasons] == expected


@pytest.mark.parametrize(
    ("score", "box", "verdict"),
    [
        (0.7, (0.6, 0.3, 0.2, 0.2), Verdict.VERDICT_APPROVE),  # beside the person: below the no-person review score
        (0.79, None, Verdict.VERDICT_APPROVE),
        (0.8, (0.6, 0.3, 0.2, 0.2), Verdict.VERDICT_REVIEW),
        (0.99, (0.45, 0.3, 0.2, 0.2), Verdict.VERDICT_REVIEW),  # a quarter on the person is not on it; never rejected
        (0.7, (0.35, 0.3, 0.2, 0.2), Verdict.VERDICT_REJECT),  # three quarters on the person
    ],
)
def test_nudity_off_any_person_only_goes_to_review_at_a_higher_score(score, box, verdict) -> None:
    decision = decide(CLEAN, [nudity(score, box=box)], SETTINGS, PERSON)
    assert decision.verdict == verdict
    if verdict == Verdict.VERDICT_REVIEW:
        assert [r.detail for r in decision.reasons] == ["FEMALE_BREAST_EXPOSED (no person detected)"]


def test_a_colour_wheel_nudenet_calls_buttocks_is_approved(nudenet: ImageClassifier) -> None:
    from skimage import data

    findings = nudenet.classify(encode(Image.fromarray(data.colorwheel()[..., :3]), "PNG"))
    assert max(f.score for f in findings) >= ModerationSettings().nudity_review_score  # the false positive is real
    assert decide(CLEAN, findings, ModerationSettings()).verdict == Verdict.VERDICT_APPROVE


def test_profanity_rejects_and_reviews() -> None:
    profane = [
        Caption(language="en", text="what the fuck is this shit"),
        Caption(language="ko", text="병신 같은 원"),
    ]
    rejected = decide(profane, [], SETTINGS)
    assert rejected.verdict == Verdict.VERDICT_REJECT
    assert [(r.code, r.detail) for r in rejected.reasons] == [("caption.profanity", "en"), ("caption.profanity", "ko")]
    assert all(r.score >= 0.9 for r in rejected.reasons)
    lenient = ModerationSettings(profanity_reject_score=1.5)
    assert decide(profane, [], lenient).verdict == Verdict.VERDICT_REVIEW


def test_sensitive_caption_is_neutralised_without_changing_the_verdict() -> None:
    captions = [
        Caption(language="en", text="an asian man next to a red square"),
        Caption(language="ko", text="젊은 여자가 웃는다"),
    ]
    decision = decide(captions, [], SETTINGS)
    assert decision.verdict == Verdict.VERDICT_APPROVE
    assert [c.text for c in decision.captions] == ["a person next to a red square", "사람이 웃는다"]
    assert [(r.code, r.detail) for r in decision.reasons] == [("caption.sensitive_attribute", "neutralised")] * 2
    assert captions[0].text == "an asian man next to a red square"  # the input is left alone


def test_sensitive_caption_is_flagged_for_review() -> None:
    captions = [Caption(language="en", text="a muslim woman"), *CLEAN]
    decision = decide(captions, [], ModerationSettings(sensitive_attribute_policy="flag"))
    assert decision.verdict == Verdict.VERDICT_REVIEW
    assert [c.text for c in decision.captions] == [c.text for c in captions]
    assert [(r.code, r.detail) for r in decision.reasons] == [("caption.sensitive_attribute", "en: gender, religion")]


def test_strongest_verdict_wins() -> None:
    profane = [Caption(language="en", text="a fucking shitty square")]
    decision = decide(profane, [nudity(0.4)], SETTINGS, PERSON)
    assert decision.verdict == Verdict.VERDICT_REJECT
    assert {r.code for r in decision.reasons} == {"image.nudity", "caption.profanity"}
    neutralised = decide([Caption(language="en", text="a young woman")], [nudity(0.4)], SETTINGS, PERSON)
    assert neutralised.verdict == Verdict.VERDICT_REVIEW
    flag = ModerationSettings(sensitive_attribute_policy="flag")
    flagged = decide([Caption(language="en", text="a young woman")], [nudity(0.9)], flag, PERSON)
    assert flagged.verdict == Verdict.VERDICT_REJECT
