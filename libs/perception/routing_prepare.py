"""Fit the scene-world router on classifier features of generated scenes and of other images.

Scenes of all three styles are rendered by the scene captioner's own generator and
re-encoded the way uploads arrive (PNG, JPEG and WebP in turn), so the router learns the
scene world as the pipeline will see it; the other images are text, documents, screens,
plain colours, gradients, noise and photos (``perception.not_scenes``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from captioner.render import render
from captioner.scenes import SceneSampler
from perception.classification import classifier_pixels, scale
from perception.not_scenes import not_scene_images
from perception.routing import SceneWorldRouter
from perception.tesseract import install_tesseract, korean_font_path

# Bump it when this module, perception.routing's fitting or perception.not_scenes changes.
CODE_VERSION = 3  # 2: classifier input is the centre crop; 3: a second test, scenes against other images
OUTPUT = Path("captioner/2/scene_world.npz")
CLASSIFIER = Path("classifier/1/model.onnx")
SCENES = 1500
OTHERS = 2000
SEED = 20_240_917
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP")
UPLOAD_QUALITY = 90


def _reencoded(image: Image.Image, fmt: str) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({} if fmt == "PNG" else {"quality": UPLOAD_QUALITY}))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def scene_images(count: int, seed: int) -> list[Image.Image]:
    """``count`` generated scenes (all styles), decoded after a PNG, JPEG or WebP round trip in turn."""
    sampler = SceneSampler(seed)
    return [_reencoded(render(sampler.sample(), seed * 100_003 + index), UPLOAD_FORMATS[index % len(UPLOAD_FORMATS)])
            for index in range(count)]


def classifier_session(model: Path, threads: int = 0):
    """An ONNX Runtime CPU session of the prepared classifier."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def classifier_features(session, images: list[Image.Image], batch: int = 32) -> np.ndarray:
    """float32 [N, 1280] pooled features of the images, prepared as the served classifier's callers do."""
    parts = []
    for start in range(0, len(images), batch):
        pixels = np.stack([classifier_pixels(image) for image in images[start:start + batch]])
        parts.append(session.run(["features"], {"pixels": scale(pixels)})[0])
    return np.concatenate(parts)


def build_router(repository: Path, wheels: Path) -> None:
    """Fit the router on ``SCENES`` scenes and ``OTHERS`` other images; save it next to the public captioner."""
    model = repository / CLASSIFIER
    if not model.exists():
        raise FileNotFoundError(f"{model} is missing: the classifier is prepared first")
    session = classifier_session(model)
    scenes = classifier_features(session, scene_images(SCENES, SEED))
    others = classifier_features(session, not_scene_images(OTHERS, SEED + 1, korean_font_path(install_tesseract())))
    SceneWorldRouter.fit(scenes, others).save(repository / OUTPUT)
