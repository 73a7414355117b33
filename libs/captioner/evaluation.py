"""Honest evaluation: COCO caption metrics plus scene-truth metrics, per split, style and language.

- BLEU-4 and CIDEr from the maintained pycocoevalcap code, on lower-cased word tokens.
- Attribute-binding F1: (size, colour, shape) tuples parsed from the caption against the
  scene, as multisets (counts expanded), micro-averaged.
- Count accuracy: share of images whose caption states the right total number of objects
  and the right count for every kind it gets right.
- Keyword precision and recall against the scene's keywords.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from captioner.dataset import Example
from captioner.generated import Generated
from captioner.grammar import keywords as scene_keywords
from captioner.keywords import caption_keywords
from captioner.parsing import parse_objects, words

CaptionFn = Callable[[np.ndarray, list[str]], list[Generated]]


def _words(text: str) -> str:
    return " ".join(words(text))


def coco_scores(predictions: dict[int, str], references: dict[int, list[str]]) -> dict[str, float]:
    """BLEU-4 and CIDEr of predictions against references (same ids)."""
    res = {key: [_words(text)] for key, text in predictions.items()}
    gts = {key: [_words(text) for text in references[key]] for key in predictions}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu4": round(float(bleu[3]), 4), "cider": round(float(cider), 4)}


@dataclass
class _Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    counts_right: int = 0
    keyword_hits: int = 0
    keywords_predicted: int = 0
    keywords_true: int = 0
    images: int = 0

    def add(self, example: Example, caption: str, language: str) -> None:
        truth, predicted = example.scene.kind_counts(), parse_objects(caption, language)
        overlap = sum((truth & predicted).values())
        self.tp += overlap
        self.fp += sum(predicted.values()) - overlap
        self.fn += sum(truth.values()) - overlap
        same_total = sum(truth.values()) == sum(predicted.values())
        self.counts_right += same_total and all(predicted[k] == truth[k] for k in truth if k in predicted)
        expected, got = set(scene_keywords(example.scene, language)), set(caption_keywords(caption, language))
        self.keyword_hits += len(expected & got)
        self.keywords_predicted += len(got)
        self.keywords_true += len(expected)
        self.images += 1

    def summary(self) -> dict[str, float]:
        f1 = 2 * self.tp / max(1, 2 * self.tp + self.fp + self.fn)
        return {
            "images": self.images,
            "binding_f1": round(f1, 4),
            "count_accuracy": round(self.counts_right / max(1, self.images), 4),
            "keyword_precision": round(self.keyword_hits / max(1, self.keywords_predicted), 4),
            "keyword_recall": round(self.keyword_hits / max(1, self.keywords_true), 4),
        }


def binding_f1(examples: list[Example], captions: list[str], language: str) -> float:
    """Attribute-binding F1 of captions (one per example, in ``language``) against the examples' scenes."""
    tally = _Tally()
    for example, caption in zip(examples, captions, strict=True):
        tally.add(example, caption, language)
    return tally.summary()["binding_f1"]


def evaluate_split(caption: CaptionFn, examples: list[Example], pixels: np.ndarray, languages: list[str], batch_size: int = 64) -> dict:
    """Metrics of one model on one split: overall and per style, for each language."""
    report: dict = {}
    for language in languages:
        predictions: dict[int, str] = {}
        for first in range(0, len(examples), batch_size):
            chunk = pixels[first : first + batch_size]
            for example, generated in zip(examples[first : first + batch_size], caption(chunk, [language] * len(chunk))):
                predictions[example.image_id] = generated.text
        tallies: dict[str, _Tally] = defaultdict(_Tally)
        for example in examples:
            for key in ("all", example.style or "unknown"):
                tallies[key].add(example, predictions[example.image_id], language)
        references = {e.image_id: e.captions[language] for e in examples}
        entry = {"all": tallies["all"].summary() | coco_scores(predictions, references)}
        for style in sorted(k for k in tallies if k != "all"):
            ids = [e.image_id for e in examples if e.style == style]
            entry[style] = tallies[style].summary() | coco_scores(
                {i: predictions[i] for i in ids}, {i: references[i] for i in ids}
            )
        entry["samples"] = [predictions[e.image_id] for e in examples[:3]]
        report[language] = entry
    return report


def captions_per_second(caption: CaptionFn, pixels: np.ndarray, batch_size: int, seconds: float = 8.0) -> float:
    """Throughput of greedy captioning at ``batch_size`` (English), after one warm-up batch."""
    batch = pixels[:batch_size]
    caption(batch, ["en"] * len(batch))
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        caption(batch, ["en"] * len(batch))
        done += len(batch)
    return round(done / (time.perf_counter() - started), 2)


def agreement(a: CaptionFn, b: CaptionFn, pixels: np.ndarray, languages: list[str], batch_size: int = 64) -> float:
    """Share of images on which two captioners produce the same tokens."""
    same = total = 0
    for first in range(0, len(pixels), batch_size):
        chunk, langs = pixels[first : first + batch_size], languages[first : first + batch_size]
        for x, y in zip(a(chunk, langs), b(chunk, langs)):
            same += x.token_ids == y.token_ids
            total += 1
    return round(same / max(1, total), 4)
