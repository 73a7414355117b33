"""Real-photo evaluation of the served ``captioner``: what it says about photos it never saw.

Each photo of ``perception.real_photos`` is captioned in English and Korean through Triton.
Per photo and language the report holds the caption, keywords, tags, objects and text, and
scores them against the hand-written truth: whether the caption names the main subject,
whether it uses a word of the generated shape world, and the precision of the names the
models gave (objects and tags) against the list of what is truly in the photo.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from captioner.vocabulary import KO_SHAPES, SHAPES
from perception.real_photos import REAL_PHOTOS, RealPhoto

OUTPUTS = ("CAPTION", "KEYWORDS", "SCORE", "TAGS", "OBJECTS", "TEXT", "ROUTE")
_JSON_OUTPUTS = ("KEYWORDS", "TAGS", "OBJECTS", "TEXT")
SHAPE_WORDS = {"en": tuple(SHAPES), "ko": tuple(KO_SHAPES.values())}


def caption_photo(client, data: bytes, language: str, model: str = "captioner") -> dict:
    """Every output of the served captioner for one image in one language (a tritonclient gRPC client)."""
    from tritonclient.grpc import InferInput, InferRequestedOutput

    image = InferInput("IMAGE", [1, 1], "BYTES")
    image.set_data_from_numpy(np.array([[data]], dtype=np.object_))
    lang = InferInput("LANGUAGE", [1, 1], "BYTES")
    lang.set_data_from_numpy(np.array([[language.encode()]], dtype=np.object_))
    answer = decoded_outputs(client.infer(model, [image, lang], outputs=[InferRequestedOutput(name) for name in OUTPUTS]), OUTPUTS)
    return answer | {"score": round(answer["score"], 4)}


def decoded_outputs(result, outputs: tuple[str, ...]) -> dict:
    """The first row of each named output of a tritonclient result, by lower-cased name.

    KEYWORDS, TAGS, OBJECTS and TEXT are parsed from JSON, SCORE becomes a float, the rest are text.
    """
    values = {name: result.as_numpy(name)[0, 0] for name in outputs}
    return {
        name.lower(): json.loads(value) if name in _JSON_OUTPUTS else float(value) if name == "SCORE" else value.decode()
        for name, value in values.items()
    }


def _mentions(text: str, word: str, language: str) -> bool:
    text = text.lower()
    if language == "ko":  # Korean nouns take particles: a substring test
        return word in text
    return re.search(rf"(?<!\w){re.escape(word.lower())}(?:e?s)?(?!\w)", text) is not None


def _is_true(name: str, truth: tuple[str, ...], language: str) -> bool:
    """A model's name counts as true when it names, or is named by, something in the truth list."""
    return any(_mentions(name, item, language) or _mentions(item, name, language) for item in truth)


@dataclass(frozen=True)
class PhotoScore:
    """How one caption of one photo fares against the truth."""

    names_subject: bool
    shape_words: list[str]
    named: list[str]
    wrong: list[str]


def score_answer(photo: RealPhoto, answer: dict, language: str) -> PhotoScore:
    """Score the captioner's answer for ``photo`` in ``language``."""
    caption = answer["caption"]
    label = "label" if language == "en" else "label_ko"
    named = list(dict.fromkeys([o[label] for o in answer["objects"]] + [t[label] for t in answer["tags"] if _mentions(caption, t[label], language)]))
    truth = photo.contents[language]
    return PhotoScore(
        names_subject=any(_mentions(caption, word, language) for word in photo.subject[language]),
        shape_words=[word for word in SHAPE_WORDS[language] if _mentions(caption, word, language)],
        named=named,
        wrong=[name for name in named if not _is_true(name, truth, language)],
    )


def nudity_scores() -> dict[str, float] | None:
    """The moderation image classifier's highest nudity score per photo (0 when it finds none); None without NudeNet."""
    try:
        from services.moderation.image_classifier import NudeNetClassifier

        classifier = NudeNetClassifier()
    except ImportError:
        return None
    return {photo.name: max((f.score for f in classifier.classify(photo.jpeg())), default=0.0) for photo in REAL_PHOTOS}


def evaluate(client, languages: tuple[str, ...] = ("en", "ko")) -> dict:
    """The real-photo report: per photo and language the answer and its score, and the totals."""
    photos, totals = [], {}
    nudity = nudity_scores()
    for language in languages:
        totals[language] = {"photos": 0, "subject_named": 0, "shape_words": 0, "named": 0, "correct": 0}
    for photo in REAL_PHOTOS:
        data = photo.jpeg()
        entry = {"name": photo.name, "source": photo.source, "truth": {lang: list(photo.contents[lang]) for lang in languages}}
        if nudity is not None:
            entry["nudity_score"] = round(nudity[photo.name], 4)
        for language in languages:
            answer = caption_photo(client, data, language)
            score = score_answer(photo, answer, language)
            entry[language] = {**answer, "names_subject": score.names_subject, "shape_words": score.shape_words, "named": score.named, "wrong": score.wrong}
            total = totals[language]
            total["photos"] += 1
            total["subject_named"] += score.names_subject
            total["shape_words"] += bool(score.shape_words)
            total["named"] += len(score.named)
            total["correct"] += len(score.named) - len(score.wrong)
        photos.append(entry)
    for total in totals.values():
        total["precision"] = round(total["correct"] / total["named"], 4) if total["named"] else None
    return {"photos": photos, "totals": totals, "max_nudity_score": max(nudity.values()) if nudity else None}


def print_report(report: dict) -> None:
    """A readable table of the report."""
    for entry in report["photos"]:
        nudity = f"; nudity score {entry['nudity_score']:.2f}" if "nudity_score" in entry else ""
        print(f"\n{entry['name']}  (truth: {', '.join(entry['truth']['en'])}{nudity})")
        for language in ("en", "ko"):
            answer = entry.get(language)
            if not answer:
                continue
            marks = "subject ok" if answer["names_subject"] else "SUBJECT MISSED"
            if answer["wrong"]:
                marks += f"; wrong: {', '.join(answer['wrong'])}"
            print(f"  {language}: {answer['caption']}  [{answer['route']}, {answer['score']:.2f}; {marks}]")
            print(f"      keywords: {', '.join(answer['keywords'])}")
            if answer["text"]:
                print(f"      text: {' | '.join(line['text'] for line in answer['text'])}")
    for language, total in report["totals"].items():
        print(
            f"\n{language}: main subject named in {total['subject_named']}/{total['photos']} photos, "
            f"shape words in {total['shape_words']}, precision of named objects/tags {total['precision']} "
            f"({total['correct']}/{total['named']})"
        )
