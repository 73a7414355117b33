"""COCO captions format: what we generate, and datasets users bring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from captioner.dataset import CAPTIONS_PER_LANGUAGE, generate_split, load_coco


def test_generated_split_is_valid_coco(tmp_path: Path) -> None:
    path = generate_split(tmp_path, "test", 12, seed=5, workers=1)
    data = json.loads(path.read_text())
    assert len(data["images"]) == 12
    assert len(data["annotations"]) == 12 * 2 * CAPTIONS_PER_LANGUAGE
    assert {a["language"] for a in data["annotations"]} == {"en", "ko"}
    examples = load_coco(path)
    assert all(e.path.exists() and e.scene is not None and len(e.captions["ko"]) == 5 for e in examples)
    photo = [e for e in examples if e.style == "photo"]
    assert all(e.path.suffix == ".jpg" for e in photo)


def test_user_dataset_without_languages_defaults_to_english(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30), "red").save(tmp_path / "a.png")
    coco = {
        "images": [{"id": 3, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [{"id": 1, "image_id": 3, "caption": "a red square"}],
    }
    (tmp_path / "captions.json").write_text(json.dumps(coco))
    (example,) = load_coco(tmp_path / "captions.json")
    assert example.captions == {"en": ["a red square"]} and example.scene is None


def test_broken_datasets_are_refused_with_the_reason(tmp_path: Path) -> None:
    coco = {"images": [{"id": 1, "file_name": "missing.png"}], "annotations": []}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    with pytest.raises(FileNotFoundError, match="1 images of .* are missing"):
        load_coco(tmp_path / "a.json")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    coco = {"images": [{"id": 1, "file_name": "x.png"}], "annotations": [{"id": 9, "image_id": 2, "caption": "?"}]}
    (tmp_path / "b.json").write_text(json.dumps(coco))
    with pytest.raises(ValueError, match="annotation 9 refers to unknown image 2"):
        load_coco(tmp_path / "b.json")
