"""The counter-examples of the scene-world router (no model needed; the Hangul font comes with Tesseract)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from perception.not_scenes import INKS, SAMPLE_PHOTOS, NotSceneSampler
from perception.real_photos import REAL_PHOTOS
from perception.tesseract import korean_font_path


@pytest.fixture(scope="module")
def sampler() -> NotSceneSampler:
    return NotSceneSampler(7, korean_font_path())


def test_every_family_gives_an_rgb_picture(sampler):
    for family, (_, draw) in sampler.families.items():
        image = draw()
        assert image.mode == "RGB" and min(image.size) >= 8, family


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("ink", INKS)
def test_text_stands_out_from_its_background(sampler, language, ink):
    pixels = np.asarray(sampler.text(language=language, ink=ink)).reshape(-1, 3).astype(int)
    corner = pixels[0]  # paper, or ink where the canvas cuts the text: the other lies far from it
    assert np.abs(pixels - corner).sum(axis=1).max() > 120


_DIGEST = """
import hashlib, sys
import numpy as np
from perception.not_scenes import not_scene_images
from perception.tesseract import korean_font_path
images = not_scene_images(12, int(sys.argv[1]), korean_font_path())
print(hashlib.sha256(b"".join(np.asarray(image).tobytes() for image in images)).hexdigest())
"""


def _digest(seed: int, hash_seed: str) -> str:
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    run = subprocess.run([sys.executable, "-c", _DIGEST, str(seed)], env=environment, capture_output=True, text=True, check=True)
    return run.stdout


def test_a_seed_gives_the_same_images_in_every_process():
    assert _digest(3, "1") == _digest(3, "2") != _digest(4, "1")


def test_the_real_photo_evaluation_set_is_never_used():
    evaluation = {photo.name for photo in REAL_PHOTOS} | {"cat", "stereo_motorcycle"}  # their scikit-image names
    assert not evaluation & set(SAMPLE_PHOTOS)
