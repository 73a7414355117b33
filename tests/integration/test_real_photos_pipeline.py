"""Real photographs through the running pipeline (upload API → search API), next to generated scenes.

The photos ship inside scikit-image and scikit-learn (``perception.real_photos``); the text
images, the formats and the rotated photo are made here.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from captioner.dataset import Example, split_rules
from captioner.evaluation import binding_f1
from captioner.images import decode_image
from captioner.render import render
from captioner.runtime import OnnxCaptioner
from captioner.scenes import SceneSampler
from perception.evaluation import score_answer
from perception.real_photos import REAL_PHOTOS
from perception.tesseract import korean_font_path
from tests.conftest import REPO_ROOT
from tests.integration.pipeline_client import SESSION_SALT, salted, search, upload, upload_all, wait_for

TAG = "real-photos"  # salts this module's uploads: ids no other test module shares

SCENE_STUDENT = REPO_ROOT / "model_repository" / "scene_captioner" / "1" / "student"


def salted_jpeg(pixels: np.ndarray, quality: int = 92) -> bytes:
    """JPEG bytes of the pixels with this session's salt: a new id, the same pixels."""
    return salted(Image.fromarray(pixels), "JPEG", tag=TAG, quality=quality)


def answer_of(status: dict, language: str) -> dict:
    """The status fields ``perception.evaluation.score_answer`` reads."""
    return {"caption": status["captions"][language]["text"], "objects": status["objects"], "tags": status["tags"]}


@pytest.fixture(scope="module")
def real_photo_statuses(pipeline) -> dict[str, dict]:
    responses = upload_all(pipeline, [salted_jpeg(photo.pixels()) for photo in REAL_PHOTOS])
    assert [r.status_code for r in responses] == [202] * len(REAL_PHOTOS), [r.text for r in responses]
    statuses = wait_for(pipeline, [r.json()["id"] for r in responses])
    return {photo.name: statuses[r.json()["id"]] for photo, r in zip(REAL_PHOTOS, responses)}


def test_every_real_photo_is_captioned_by_its_main_subject_in_both_languages(real_photo_statuses) -> None:
    for photo in REAL_PHOTOS:
        status = real_photo_statuses[photo.name]
        assert status["status"] == "indexed" and status["verdict"] == "approve", (photo.name, status)
        assert status["route"] == "real_world", (photo.name, status["route"])
        for language in ("en", "ko"):
            score = score_answer(photo, answer_of(status, language), language)
            caption = status["captions"][language]["text"]
            assert score.names_subject, (photo.name, language, caption)
            assert not score.shape_words, (photo.name, language, caption)
            keywords = status["captions"][language]["keywords"]
            assert any(word in keyword for keyword in keywords for word in photo.subject[language]), (photo.name, language, keywords)
        print(f"{photo.name}: {status['captions']['en']['text']} / {status['captions']['ko']['text']}")


@pytest.mark.parametrize(("query", "language"), [("cat", "en"), ("고양이", "ko"), ("고양이", "en"), ("cat", "ko")])
def test_a_search_for_cat_finds_the_cat_photo(pipeline, real_photo_statuses, query: str, language: str) -> None:
    response = search(pipeline, query, language, 3)
    assert response.status_code == 200, response.text
    assert real_photo_statuses["chelsea"]["id"] in [hit["id"] for hit in response.json()["results"]], response.json()


def _text_image(lines: list[str], font_path, size=(900, 600)) -> np.ndarray:
    image = Image.new("RGB", size, (245, 242, 235))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(font_path), 72)
    for row, line in enumerate(lines):
        draw.text((60, 120 + row * 160), line, fill=(20, 20, 20), font=font)
    return np.asarray(image)


def test_printed_text_reaches_the_record_and_the_search(pipeline) -> None:
    font = korean_font_path()
    english = salted_jpeg(_text_image(["GRAND OPENING", "SUMMER SALE"], font))
    korean = salted_jpeg(_text_image(["커피 전문점", "할인 행사"], font))
    responses = [upload(pipeline, english), upload(pipeline, korean)]
    assert [r.status_code for r in responses] == [202, 202], [r.text for r in responses]
    statuses = wait_for(pipeline, [r.json()["id"] for r in responses])
    english_status, korean_status = (statuses[r.json()["id"]] for r in responses)
    for status, words in ((english_status, ("opening", "summer", "sale")), (korean_status, ("커피", "할인"))):
        assert status["status"] == "indexed", status
        read = " ".join(line["text"] for line in status["text_lines"]).lower()
        assert all(word in read for word in words), (words, status["text_lines"])
    for query, language, status in (("sale", "en", english_status), ("할인", "ko", korean_status), ("opening", "en", english_status)):
        hits = [hit["id"] for hit in search(pipeline, query, language, 3).json()["results"]]
        assert status["id"] in hits, (query, hits)


def test_every_new_format_and_a_rotated_phone_photo_are_captioned(pipeline) -> None:
    cat = next(photo for photo in REAL_PHOTOS if photo.name == "chelsea")
    image = Image.fromarray(cat.pixels())
    formats = {"GIF": "image/gif", "BMP": "image/bmp", "TIFF": "image/tiff", "HEIF": "image/heic", "AVIF": "image/avif"}
    uploads = {fmt: salted(image, fmt, tag=TAG) for fmt in formats}
    # A phone photo: pixels stored rotated 90° counter-clockwise, EXIF orientation 6 says how to turn them back.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = io.BytesIO()
    Image.fromarray(np.rot90(cat.pixels())).save(rotated, format="JPEG", quality=92, exif=exif.tobytes(), comment=SESSION_SALT.encode())
    uploads["rotated"] = rotated.getvalue()
    uploads["upright"] = salted_jpeg(cat.pixels(), quality=91)  # not the bytes another test uploads
    responses = {name: upload(pipeline, data) for name, data in uploads.items()}
    assert {name: r.status_code for name, r in responses.items()} == {name: 202 for name in uploads}, {n: r.text for n, r in responses.items()}
    statuses = wait_for(pipeline, [r.json()["id"] for r in responses.values()])
    by_name = {name: statuses[r.json()["id"]] for name, r in responses.items()}
    assert {fmt: by_name[fmt]["content_type"] for fmt in formats} == formats
    for name, status in by_name.items():
        assert status["status"] == "indexed", (name, status)
        assert re.search(r"\bcats?\b", status["captions"]["en"]["text"]), (name, status["captions"])
        assert "고양이" in status["captions"]["ko"]["text"], (name, status["captions"])
    assert (by_name["rotated"]["width"], by_name["rotated"]["height"]) == (image.width, image.height)
    upright_cat = next(o for o in by_name["upright"]["objects"] if o["label"] == "cat")["boxes"][0]
    rotated_cat = next(o for o in by_name["rotated"]["objects"] if o["label"] == "cat")["boxes"][0]
    assert all(abs(upright_cat[k] - rotated_cat[k]) < 0.05 for k in ("x", "y", "width", "height")), (upright_cat, rotated_cat)


def test_generated_scenes_keep_the_students_binding_f1_next_to_real_photos(pipeline) -> None:
    sampler = SceneSampler(4242, split_rules()["test"])
    scenes = [sampler.sample() for _ in range(60)]
    images = [render(scene, 4242 + i) for i, scene in enumerate(scenes)]
    scene_uploads = [salted_jpeg(np.asarray(image)) for image in images]
    photo_uploads = [salted_jpeg(np.ascontiguousarray(np.fliplr(photo.pixels()))) for photo in REAL_PHOTOS]  # new photos, same kind
    responses = upload_all(pipeline, scene_uploads + photo_uploads)
    assert [r.status_code for r in responses] == [202] * len(responses), [r.text for r in responses if r.status_code != 202][:2]
    statuses = wait_for(pipeline, [r.json()["id"] for r in responses])
    scene_statuses = [statuses[r.json()["id"]] for r in responses[: len(scenes)]]
    misrouted = [s["id"] for s in scene_statuses if s["route"] != "scene_world"]
    assert len(misrouted) <= 1, misrouted  # the router's target: at least 99.5% of scenes
    assert all(statuses[r.json()["id"]]["route"] == "real_world" for r in responses[len(scenes) :])

    student = OnnxCaptioner(SCENE_STUDENT)
    pixels = np.stack([decode_image(data, student.config.image_size) for data in scene_uploads])
    examples = [Example(image_id=i, path=REPO_ROOT, scene=scene) for i, scene in enumerate(scenes)]
    for language in ("en", "ko"):
        f1 = binding_f1(examples, [status["captions"][language]["text"] for status in scene_statuses], language)
        f1_alone = binding_f1(examples, [g.text for g in student.caption(pixels, [language] * len(scenes))], language)
        print(f"{language}: binding F1 through the pipeline {f1}, the student alone {f1_alone}")
        assert abs(f1 - f1_alone) <= 0.02, (language, f1, f1_alone)
