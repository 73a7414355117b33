"""Grounded captions: English and Korean sentences that name only what the models found.

The detector counts and places COCO objects, the classifier names the whole image among
the ImageNet-1k classes, the text reader reads lines of text. ``describe`` turns those
findings into one caption per language from the same plan, so both name the same things:

- detected objects, most important first, at most ``MAX_OBJECT_KINDS`` kinds, counted
  ("two horses", "말 두 마리"); a lone object takes the classifier's specific name when
  the two models agree ("a tabby cat", "얼룩고양이 한 마리");
- the classifier's main noun when the detector names nothing ("a photo of a palace"), or
  its kind when only that is clear ("a photo of a building"), or, after the detections,
  a confident thing of another kind ("two cups with coffee");
- a scene phrase when a scene class is confident ("on a beach", "해변에");
- recognised text, quoted briefly ("with the text “OPEN”", "“OPEN”이라는 글자가 있는");
- otherwise an honest generic caption with a low score; nothing is ever made up.

People are named "person"/"사람" only: the classifier's person classes ("groom") would
guess gender or age, which captions must not do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from perception.korean import count_phrase, join_and, particle
from perception.labels import COCO_CLASSES, IMAGENET_CLASSES, ImagenetLabel, coco_label, imagenet_label

LANGUAGES = ("en", "ko")
# The models cannot tell a photograph from an illustration; this is the one place that wording lives.
MEDIUM = {"en": "a photo", "ko": "사진"}

OBJECT_MIN_SCORE = 0.35  # objects reported at all: YOLOv3-tiny boxes below this are mostly false
NAMED_OBJECT_MIN_SCORE = 0.5  # objects a caption names: a wrong name is worse than a missing one
MAX_OBJECT_KINDS = 3  # beyond three kinds a caption turns into a list whose tail is the least reliable
SUBJECT_MIN_SCORE = 0.5  # a classifier-only subject: below this the top noun of 1000 classes is often wrong
LEADING_MIN_SCORE = 0.25  # ... or a noun this likely that leads the next noun by LEADING_MARGIN
LEADING_MARGIN = 3.0  # a clear lead over every other reading is evidence too (the daisy at 0.32, next 0.05)
KIND_MIN_SCORE = 0.5  # failing that, a kind ("a building") pooled over its classes: a coarser, safer claim
EXTRA_MIN_SCORE = 0.6  # beside detections the classifier (one label for the whole image) must be surer
REFINE_MIN_SCORE = 0.5  # a specific name replaces the detector's general noun only when more likely than not
SCENE_MIN_SCORE = 0.3  # scene classes share probability with the things in the scene, so 0.3 already leads
TEXT_MIN_SCORE = 0.6  # recognised lines below this confidence are often garbled
TEXT_MAX_CHARS = 40  # a caption mentions text, it does not transcribe it
KEYWORD_MIN_SCORE = 0.3  # keywords serve search recall, so less certain classifier names still count
GENERIC_SCORE = 0.05  # the score of a caption that names nothing

_PERSON = "person"
_SCENE = "scene"
# General names of a kind, for when the classifier is sure of the kind but not of the thing:
# kind -> (English, Korean, countable in English).
_KIND_NOUNS = {
    "animal": ("animal", "동물", True),
    "building": ("building", "건물", True),
    "vehicle": ("vehicle", "탈것", True),
    "food": ("food", "음식", False),
    "drink": ("drink", "음료", True),
    "plant": ("plant", "식물", True),
    "clothing": ("clothing", "옷", False),
    "instrument": ("musical instrument", "악기", True),
}


@dataclass(frozen=True)
class Box:
    """A box relative to the image (0..1): left, top, width, height, and its detection score."""

    x: float
    y: float
    width: float
    height: float
    score: float

    @property
    def area(self) -> float:
        return self.width * self.height


@dataclass(frozen=True)
class ObjectGroup:
    """The detections of one COCO class: its names, how many, the best score, the boxes (best first)."""

    label: str  # COCO noun_en ("motorcycle")
    label_ko: str
    count: int
    score: float
    boxes: tuple[Box, ...]
    index: int  # COCO class index


@dataclass(frozen=True)
class Tag:
    """One classifier class: specific and general names and its probability."""

    label: str  # tag_en ("tabby cat")
    label_ko: str
    noun: str  # noun_en ("cat")
    noun_ko: str
    score: float
    index: int  # ImageNet class index

    @classmethod
    def for_class(cls, index: int, score: float) -> Tag:
        """The tag of ImageNet class ``index`` with probability ``score``."""
        label = imagenet_label(index)
        return cls(label.tag_en, label.tag_ko, label.noun_en, label.noun_ko, float(score), index)


@dataclass(frozen=True)
class TextLine:
    """A line of recognised text, its confidence and where it is (relative box), if known."""

    text: str
    score: float
    box: Box | None = None


@dataclass(frozen=True)
class Findings:
    """What the models found in one image; objects in order of importance, tags by probability."""

    objects: tuple[ObjectGroup, ...] = ()
    tags: tuple[Tag, ...] = ()
    text: tuple[TextLine, ...] = ()


@dataclass(frozen=True)
class GroundedCaption:
    """A caption, its keywords (most important first) and how well the findings support it (0..1)."""

    text: str
    keywords: list[str]
    score: float


def group_detections(rows: np.ndarray, width: int, height: int, min_score: float = OBJECT_MIN_SCORE) -> tuple[ObjectGroup, ...]:
    """Detector rows (x1, y1, x2, y2 in original-image pixels, score, class) grouped and counted per class.

    Rows below ``min_score`` (the zero padding included) are dropped; boxes are clipped to the
    image. Groups come most important first: the summed box area times score, so the large,
    sure main subject leads.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise ValueError(f"detections must be an [N, 6] array, got shape {rows.shape}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    boxes_by_class: dict[int, list[Box]] = {}
    for x1, y1, x2, y2, score, class_value in rows:
        if not score >= min_score:
            continue
        index = int(class_value)
        if index != class_value or not 0 <= index < COCO_CLASSES:
            raise ValueError(f"detector class {class_value} is not a COCO class index")
        left, right = np.clip(sorted((x1 / width, x2 / width)), 0.0, 1.0)
        top, bottom = np.clip(sorted((y1 / height, y2 / height)), 0.0, 1.0)
        if right > left and bottom > top:
            box = Box(float(left), float(top), float(right - left), float(bottom - top), float(score))
            boxes_by_class.setdefault(index, []).append(box)
    groups = []
    for index, boxes in boxes_by_class.items():
        boxes.sort(key=lambda box: -box.score)
        label = coco_label(index)
        groups.append(ObjectGroup(label.noun_en, label.noun_ko, len(boxes), boxes[0].score, tuple(boxes), index))
    groups.sort(key=lambda group: (-sum(box.area * box.score for box in group.boxes), group.index))
    return tuple(groups)


def tags_from_probabilities(probabilities: np.ndarray, k: int = 5, min_score: float = 0.05) -> tuple[Tag, ...]:
    """The ``k`` most probable ImageNet classes with probability at least ``min_score``, most probable first."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if probabilities.shape != (IMAGENET_CLASSES,):
        raise ValueError(f"expected {IMAGENET_CLASSES} class probabilities, got {probabilities.size}")
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("class probabilities must be finite")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    top = np.argsort(-probabilities, kind="stable")[:k]
    return tuple(Tag.for_class(int(index), probabilities[index]) for index in top if probabilities[index] >= min_score)


# --- Planning: what a caption names, shared by both languages -------------------------


@dataclass(frozen=True)
class _Mention:
    en: str
    ko: str
    score: float
    kind: str
    words_en: tuple[str, ...]  # keywords, general before specific
    words_ko: tuple[str, ...]


@dataclass(frozen=True)
class _NounScore:
    label: ImagenetLabel  # the most probable class with this noun
    score: float  # summed over the classes sharing the noun
    members: tuple[ImagenetLabel, ...]


@dataclass(frozen=True)
class _Plan:
    mentions: tuple[_Mention, ...]
    scene: ImagenetLabel | None
    text: str
    score: float


def _noun_scores(tags: tuple[Tag, ...]) -> list[_NounScore]:
    """Tags pooled by general noun: tabby 0.4 + tiger cat 0.3 make "cat" 0.7."""
    pooled: dict[tuple[str, str], list[Tag]] = {}
    for tag in sorted(tags, key=lambda tag: -tag.score):
        pooled.setdefault((tag.noun, tag.noun_ko), []).append(tag)
    scores = [
        _NounScore(imagenet_label(group[0].index), sum(tag.score for tag in group), tuple(imagenet_label(t.index) for t in group))
        for group in pooled.values()
    ]
    return sorted(scores, key=lambda noun: -noun.score)


def _names_specifically(label: ImagenetLabel) -> bool:
    return label.kind != _PERSON


def _object_mention(group: ObjectGroup, tags: tuple[Tag, ...]) -> _Mention:
    coco = coco_label(group.index)
    agreeing = [
        tag
        for tag in tags
        if tag.score >= REFINE_MIN_SCORE
        and imagenet_label(tag.index).coco == coco.noun_en
        and _names_specifically(imagenet_label(tag.index))
    ]
    if group.count == 1 and agreeing:
        specific = imagenet_label(max(agreeing, key=lambda tag: tag.score).index)
        return _Mention(
            _with_article(specific.tag_en, specific.countable),
            count_phrase(specific.tag_ko, 1, specific.counter_ko),
            group.score,
            coco.kind,
            (coco.noun_en, specific.noun_en, specific.tag_en),
            (coco.noun_ko, specific.noun_ko, specific.tag_ko),
        )
    return _Mention(
        _counted_en(coco.noun_en, coco.plural_en, coco.countable, group.count),
        count_phrase(coco.noun_ko, group.count, coco.counter_ko),
        group.score,
        coco.kind,
        (coco.noun_en,),
        (coco.noun_ko,),
    )


def _classifier_mention(noun: _NounScore) -> _Mention:
    label = noun.label
    specific = _names_specifically(label)
    return _Mention(
        _with_article(label.noun_en, label.countable),
        label.noun_ko,
        noun.score,
        label.kind,
        (label.noun_en, label.tag_en) if specific else (label.noun_en,),
        (label.noun_ko, label.tag_ko) if specific else (label.noun_ko,),
    )


def _kind_mention(things: list[_NounScore]) -> _Mention | None:
    pooled: dict[str, float] = {}
    for noun in things:
        if noun.label.kind in _KIND_NOUNS:
            pooled[noun.label.kind] = pooled.get(noun.label.kind, 0.0) + noun.score
    if not pooled:
        return None
    kind, score = max(pooled.items(), key=lambda item: item[1])
    if score < KIND_MIN_SCORE:
        return None
    name_en, name_ko, countable = _KIND_NOUNS[kind]
    return _Mention(_with_article(name_en, countable), name_ko, score, kind, (name_en,), (name_ko,))


def _leads(things: list[_NounScore]) -> bool:
    """Whether the first noun is sure enough to be a classifier-only subject."""
    first, runner_up = things[0].score, things[1].score if len(things) > 1 else 0.0
    return first >= SUBJECT_MIN_SCORE or (first >= LEADING_MIN_SCORE and first >= LEADING_MARGIN * runner_up)


def _classifier_thing(nouns: list[_NounScore], mentions: list[_Mention], objects: tuple[ObjectGroup, ...]) -> _Mention | None:
    """What the classifier adds: its main non-scene noun (or kind) alone, or a thing of another kind beside detections."""
    things = [noun for noun in nouns if noun.label.kind != _SCENE]
    if not mentions:
        if things and _leads(things):
            return _classifier_mention(things[0])
        return _kind_mention(things)
    if not things:
        return None
    best = things[0]
    detected = {group.label for group in objects}
    agrees = any(member.coco in detected for member in best.members)
    # A detection of the same kind most likely is the same thing under another name.
    same_kind = any(mention.kind == best.label.kind for mention in mentions)
    return _classifier_mention(best) if best.score >= EXTRA_MIN_SCORE and not agrees and not same_kind else None


def _quoted_text(lines: tuple[TextLine, ...]) -> tuple[str, float]:
    confident = [line for line in lines if line.score >= TEXT_MIN_SCORE and line.text.strip()]
    if not confident:
        return "", 0.0
    joined = " ".join(" ".join(line.text.split()) for line in confident)
    if len(joined) > TEXT_MAX_CHARS:
        cut = joined[:TEXT_MAX_CHARS]
        joined = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip() + "…"
    return joined, max(line.score for line in confident)


def _plan(findings: Findings) -> _Plan:
    objects = tuple(group for group in findings.objects if group.score >= NAMED_OBJECT_MIN_SCORE)
    mentions = [_object_mention(group, findings.tags) for group in objects]
    nouns = _noun_scores(findings.tags)
    thing = _classifier_thing(nouns, mentions, objects)
    if thing is not None:
        mentions.append(thing)  # the detector, which locates what it names, leads
    scenes = [noun for noun in nouns if noun.label.kind == _SCENE and noun.score >= SCENE_MIN_SCORE]
    scene = scenes[0] if scenes else None
    text, text_score = _quoted_text(findings.text)
    mentions = mentions[:MAX_OBJECT_KINDS]
    if mentions:
        score = mentions[0].score
    elif scene is not None:
        score = scene.score
    else:
        score = text_score or GENERIC_SCORE
    return _Plan(tuple(mentions), scene.label if scene else None, text, float(min(1.0, score)))


# --- Wording ----------------------------------------------------------------------------

_EN_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
# Words spelled with a vowel letter but said with a consonant sound ("a unicycle", "a European"),
# and with a silent h ("an hour").
_CONSONANT_SOUND = re.compile(r"(?:uni|use|usu|eu|one|once|ewe|u[bcfgklmnprstvz][aeiouy])", re.IGNORECASE)
_SILENT_H = re.compile(r"(?:hour|honest|honou?r|heir)", re.IGNORECASE)
_VOWEL_LETTER_NAMES = frozenset("AEFHILMNORSX")  # letters whose names start with a vowel: "an ATM", "an SUV"


def indefinite_article(phrase: str) -> str:
    """ "a" or "an" for an English noun phrase, by the sound it starts with."""
    word = re.split(r"[\s\-]", phrase.strip(), maxsplit=1)[0]
    if not word:
        raise ValueError("no word to choose an article for")
    if word.isupper() and len(word) <= 4:  # an abbreviation, read letter by letter
        return "an" if word[0] in _VOWEL_LETTER_NAMES else "a"
    if _SILENT_H.match(word):
        return "an"
    if _CONSONANT_SOUND.match(word):
        return "a"
    return "an" if word[0].lower() in "aeiou" else "a"


def _with_article(noun: str, countable: bool) -> str:
    return f"{indefinite_article(noun)} {noun}" if countable else noun


def _counted_en(noun: str, plural: str, countable: bool, count: int) -> str:
    if not countable:
        return noun
    if count == 1:
        return _with_article(noun, True)
    number = _EN_NUMBERS[count] if count < len(_EN_NUMBERS) else str(count)
    return f"{number} {plural}"


def _join_en(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _english(plan: _Plan) -> str:
    medium = MEDIUM["en"]
    text = f"the text “{plan.text}”" if plan.text else ""
    if plan.mentions:
        subject = plan.mentions[0].en
        if len(plan.mentions) > 1:
            subject += " with " + _join_en([mention.en for mention in plan.mentions[1:]])
        caption = f"{medium} of {subject}" + (f" {plan.scene.scene_en}" if plan.scene else "")
    elif plan.scene:
        caption = f"{medium} of {_with_article(plan.scene.noun_en, plan.scene.countable)}"
    elif text:
        return f"{medium} with {text}"
    else:
        return f"{medium} with no recognised objects"
    return caption + (f", with {text}" if text else "")


def _korean(plan: _Plan) -> str:
    medium = MEDIUM["ko"]
    items = [mention.ko for mention in plan.mentions]
    if plan.text:
        items.append(f"“{plan.text}”{particle(plan.text, '이라는/라는')} 글자")
    if not items:
        return f"{plan.scene.noun_ko} {medium}" if plan.scene else f"인식된 물체가 없는 {medium}"
    things = join_and(items)
    caption = f"{things}{particle(things, '이/가')} 있는 {medium}"
    return f"{plan.scene.scene_ko} {caption}" if plan.scene else caption


def _language(language: str) -> str:
    base = language.split("-")[0].lower()
    if base not in LANGUAGES:
        raise ValueError(f"unsupported caption language {language!r}; expected one of {', '.join(LANGUAGES)}")
    return base


def describe(findings: Findings, language: str) -> GroundedCaption:
    """The caption of ``findings`` in ``language`` ("en" or "ko"), its keywords and score."""
    language = _language(language)
    plan = _plan(findings)
    text = _english(plan) if language == "en" else _korean(plan)
    return GroundedCaption(text=text, keywords=_keywords(findings, plan, language), score=plan.score)


def keywords(findings: Findings, language: str, limit: int = 10) -> list[str]:
    """Search keywords, most important first: names of the things captioned, of the other confident
    objects and classes (general and specific), the scene, then words of the recognised text.

    English names are lower-cased, Korean ones are the tables' names ("말" included); words of
    the text are lower-cased and two characters or longer.
    """
    return _keywords(findings, _plan(findings), _language(language), limit)


def _keywords(findings: Findings, plan: _Plan, language: str, limit: int = 10) -> list[str]:
    english = language == "en"
    words: list[str] = []
    for mention in plan.mentions:
        words += mention.words_en if english else mention.words_ko
    for group in findings.objects:
        if group.score >= NAMED_OBJECT_MIN_SCORE:
            words.append(group.label if english else group.label_ko)
    if plan.scene is not None:
        words += [plan.scene.noun_en, plan.scene.tag_en] if english else [plan.scene.noun_ko, plan.scene.tag_ko]
    for noun in _noun_scores(findings.tags):
        if noun.score >= KEYWORD_MIN_SCORE:
            words.append(noun.label.noun_en if english else noun.label.noun_ko)
    for tag in findings.tags:
        label = imagenet_label(tag.index)
        if tag.score >= KEYWORD_MIN_SCORE and _names_specifically(label):
            words.append(label.tag_en if english else label.tag_ko)
    words = [word.lower() if english else word for word in words]
    if plan.text:
        read = (word.lower() for line in findings.text if line.score >= TEXT_MIN_SCORE for word in re.findall(r"\w+", line.text))
        words += [word for word in read if len(word) >= 2]
    return list(dict.fromkeys(words))[:limit]
