"""Generated datasets in the COCO captions format, and loading any COCO captions dataset.

Layout of a generated dataset::

    <root>/<split>.json            COCO captions JSON (+ per-image scene, style, keywords)
    <root>/<split>/<id>.jpg|png    images (photo-like style as JPEG, the others as PNG)
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from captioner.grammar import captions, keywords
from captioner.images import to_pixels
from captioner.render import render
from captioner.scenes import NOVEL_PAIRS, NOVEL_STYLE_SHAPE, CompositionRule, Scene, SceneSampler
from captioner.vocabulary import LANGUAGES

CAPTIONS_PER_LANGUAGE = 5


def split_rules() -> dict[str, CompositionRule]:
    """train and the in-distribution test exclude the novel compositions; the novel test requires one."""
    excluded = CompositionRule(held_out_pairs=NOVEL_PAIRS, held_out_style_shape=NOVEL_STYLE_SHAPE)
    novel = CompositionRule(held_out_pairs=NOVEL_PAIRS, held_out_style_shape=NOVEL_STYLE_SHAPE, require_novel=True)
    return {"train": excluded, "test": excluded, "novel": novel}


def _render_one(args: tuple[dict, int, str]) -> None:
    scene_dict, render_seed, path = args
    image = render(Scene.from_dict(scene_dict), render_seed)
    if path.endswith(".jpg"):
        image.save(path, quality=95)
    else:
        image.save(path)


def generate_split(root: Path, split: str, count: int, seed: int, workers: int = 2) -> Path:
    """Write ``count`` scenes of ``split`` under ``root``; returns the JSON path."""
    sampler = SceneSampler(seed, split_rules()[split])
    image_dir = root / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations, jobs = [], [], []
    for index in range(count):
        scene = sampler.sample()
        file_name = f"{split}/{index:06d}.{'jpg' if scene.style == 'photo' else 'png'}"
        images.append({
            "id": index,
            "file_name": file_name,
            "width": scene.width,
            "height": scene.height,
            "style": scene.style,
            "scene": scene.to_dict(),
            "keywords": {language: keywords(scene, language) for language in LANGUAGES},
        })
        for language in LANGUAGES:
            for text in captions(scene, language, CAPTIONS_PER_LANGUAGE, seed * 7919 + index):
                annotations.append({"id": len(annotations), "image_id": index, "caption": text, "language": language})
        jobs.append((scene.to_dict(), seed * 1_000_003 + index, str(root / file_name)))
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_render_one, jobs, chunksize=256))
    info = {"description": f"generated scenes, split {split}", "seed": seed, "captions_per_language": CAPTIONS_PER_LANGUAGE}
    path = root / f"{split}.json"
    path.write_text(json.dumps({"info": info, "images": images, "annotations": annotations}, ensure_ascii=False))
    return path


@dataclass
class Example:
    """One image of a COCO dataset with its reference captions per language."""

    image_id: int
    path: Path
    captions: dict[str, list[str]] = field(default_factory=dict)
    style: str | None = None
    scene: Scene | None = None


def load_pixels(examples: list[Example], size: int) -> np.ndarray:
    """uint8 [N, 3, size, size] of the examples' images."""
    return np.stack([to_pixels(Image.open(example.path), size) for example in examples])


def load_coco(json_path: Path, default_language: str = "en") -> list[Example]:
    """Examples of a COCO captions file; annotations without ``language`` count as ``default_language``.

    Image paths resolve against the JSON's folder, so any COCO-format dataset works.
    """
    data = json.loads(Path(json_path).read_text())
    base = Path(json_path).parent
    examples = {}
    for image in data["images"]:
        file_name = Path(image["file_name"])
        path = file_name if file_name.is_absolute() else base / file_name
        scene = Scene.from_dict(image["scene"]) if "scene" in image else None
        examples[image["id"]] = Example(image["id"], path, {}, image.get("style"), scene)
    for annotation in data["annotations"]:
        example = examples.get(annotation["image_id"])
        if example is None:
            raise ValueError(f"annotation {annotation.get('id')} refers to unknown image {annotation['image_id']}")
        example.captions.setdefault(annotation.get("language", default_language), []).append(annotation["caption"])
    missing = [e.path for e in examples.values() if not e.path.exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images of {json_path} are missing, e.g. {missing[0]}")
    return [examples[key] for key in sorted(examples)]
