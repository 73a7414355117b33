"""What the public ``captioner`` model composes from the other models: route, findings, outputs.

An image goes to one of two captioners. Images of the generated scene world (coloured
shapes, recognised by the classifier's features, see ``perception.routing``) go to the
trained scene captioner, which describes them best. Every other image is understood by
the pretrained image classifier, object detector and text reader, and described by the
grounded caption builder (``perception.grounded``) from what those models found.

The Triton wiring (BLS calls) lives in ``model_repository/captioner/2/model.py``; this
module holds the logic and runs the models through a ``ModelRunner``, so it can be tested
without a server.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from perception.classification import classifier_pixels
from perception.detection import Letterbox, letterbox
from perception.grounded import Box, Findings, TextLine, group_detections, tags_from_probabilities
from perception.routing import SceneWorldRouter

SCENE_WORLD, REAL_WORLD = "scene_world", "real_world"
DETECTOR_SIZE, TEXT_READER_SIZE = 416, 960
# Largest batch each sub-model accepts (its config's max_batch_size).
CLASSIFIER_BATCH, DETECTOR_BATCH, TEXT_READER_BATCH, SCENE_CAPTIONER_BATCH = 32, 16, 8, 32


class ModelRunner(Protocol):
    """Runs one batch through a served model: named input arrays in, named output arrays out."""

    def __call__(self, model: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class ModelNames:
    """The Triton models the composition calls."""

    scene_captioner: str = "scene_captioner"
    classifier: str = "classifier"
    detector: str = "detector"
    text_reader: str = "text_reader"


@dataclass(frozen=True)
class Understanding:
    """How one distinct image is captioned: its route and, for the real world, what the models found."""

    route: str
    findings: Findings


def _chunks(count: int, size: int):
    for start in range(0, count, size):
        yield slice(start, min(count, start + size))


def _run_batched(runner: ModelRunner, model: str, inputs: dict[str, np.ndarray], outputs: list[str], batch: int) -> dict[str, np.ndarray]:
    """``outputs`` of ``model`` for inputs of any length, sent in chunks of at most ``batch`` rows."""
    count = len(next(iter(inputs.values())))
    parts = [runner(model, {name: array[rows] for name, array in inputs.items()}, outputs) for rows in _chunks(count, batch)]
    return {output: np.concatenate([part[output] for part in parts]) for output in outputs}


def _to_original_pixels(frame: Letterbox, rows: np.ndarray, width: int, height: int) -> np.ndarray:
    """Detector rows (x1, y1, x2, y2 in letterbox pixels, score, class) in original-image pixels, clipped to the image."""
    rows = rows[rows[:, 4] > 0].copy()
    bounds = np.array([width, height, width, height])
    for row in rows:
        row[:4] = np.clip(frame.to_original(row[:4]), 0, bounds)
    return rows


class Composer:
    """Routes distinct images and gathers the findings of the real-world models."""

    def __init__(self, runner: ModelRunner, router: SceneWorldRouter, names: ModelNames = ModelNames(), read_text: bool = True) -> None:
        self.runner = runner
        self.router = router
        self.names = names
        self.read_text = read_text

    def understand(self, images: list[Image.Image]) -> list[Understanding]:
        """The route and findings of each upright RGB image, models run in batches."""
        if not images:
            return []
        classified = _run_batched(
            self.runner,
            self.names.classifier,
            {"PIXELS": np.stack([classifier_pixels(image) for image in images])},
            ["PROBABILITIES", "FEATURES"],
            CLASSIFIER_BATCH,
        )
        scene = self.router.is_scene_world(classified["FEATURES"])
        real = [index for index in range(len(images)) if not scene[index]]
        objects = self._detect([images[i] for i in real])
        text = self._read([images[i] for i in real]) if self.read_text else [()] * len(real)
        results = [Understanding(SCENE_WORLD, Findings(objects=(), tags=(), text=())) for _ in images]
        for position, index in enumerate(real):
            tags = tags_from_probabilities(classified["PROBABILITIES"][index])
            results[index] = Understanding(REAL_WORLD, Findings(objects=objects[position], tags=tags, text=text[position]))
        return results

    def _detect(self, images: list[Image.Image]) -> list[tuple]:
        if not images:
            return []
        frames = [letterbox(image, DETECTOR_SIZE) for image in images]
        rows = _run_batched(
            self.runner, self.names.detector, {"PIXELS": np.stack([pixels for pixels, _ in frames])}, ["DETECTIONS"], DETECTOR_BATCH
        )["DETECTIONS"]
        return [
            group_detections(_to_original_pixels(frame, detections, image.width, image.height), image.width, image.height)
            for image, (_, frame), detections in zip(images, frames, rows)
        ]

    def _read(self, images: list[Image.Image]) -> list[tuple[TextLine, ...]]:
        if not images:
            return []
        frames = [letterbox(image, TEXT_READER_SIZE) for image in images]
        answers = _run_batched(
            self.runner, self.names.text_reader, {"PIXELS": np.stack([pixels for pixels, _ in frames])}, ["LINES"], TEXT_READER_BATCH
        )["LINES"]
        results = []
        for image, (_, frame), answer in zip(images, frames, answers):
            lines = []
            for line in json.loads(bytes(answer.reshape(-1)[0])):
                x, y, width, height = frame.to_relative(line["box"], image.width, image.height)
                score = float(line["score"])
                lines.append(TextLine(text=line["text"], score=score, box=Box(x=x, y=y, width=width, height=height, score=score)))
            results.append(tuple(lines))
        return results

    def scene_captions(self, rows: list[tuple[bytes, str]]) -> list[tuple[str, list[str], float]]:
        """(caption, keywords, score) of the scene captioner for (image bytes, language) rows, in order."""
        if not rows:
            return []
        answer = _run_batched(
            self.runner,
            self.names.scene_captioner,
            {
                "IMAGE": np.array([[data] for data, _ in rows], dtype=np.object_),
                "LANGUAGE": np.array([[language.encode()] for _, language in rows], dtype=np.object_),
            },
            ["CAPTION", "KEYWORDS", "SCORE"],
            SCENE_CAPTIONER_BATCH,
        )
        return [
            (caption.decode(), json.loads(words), float(score))
            for caption, words, score in zip(answer["CAPTION"].reshape(-1), answer["KEYWORDS"].reshape(-1), answer["SCORE"].reshape(-1))
        ]


def findings_json(findings: Findings) -> dict[str, str]:
    """The TAGS, OBJECTS and TEXT outputs (JSON) of the findings."""
    return {
        "TAGS": json.dumps([{"label": t.label, "label_ko": t.label_ko, "score": round(t.score, 4)} for t in findings.tags], ensure_ascii=False),
        "OBJECTS": json.dumps(
            [
                {
                    "label": o.label,
                    "label_ko": o.label_ko,
                    "count": o.count,
                    "score": round(o.score, 4),
                    "boxes": [{k: round(v, 4) for k, v in asdict(box).items()} for box in o.boxes],
                }
                for o in findings.objects
            ],
            ensure_ascii=False,
        ),
        "TEXT": json.dumps(
            [
                {"text": t.text, "score": round(t.score, 4), "box": {k: round(v, 4) for k, v in asdict(t.box).items()} if t.box else None}
                for t in findings.text
            ],
            ensure_ascii=False,
        ),
    }
