"""The text reader (PP-OCRv4 + Tesseract) on rendered English and Korean text, run directly (no Triton).

The model files and Tesseract are prepared by `make model-repository`; when they are
missing the tests fail and say so, they do not skip.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from perception.detection import letterbox
from perception.real_photos import REAL_PHOTOS
from perception.tesseract import korean_font_path
from perception.text_reading import (
    INPUT_SIZE, LINE_SCORE_THRESHOLD, MODEL_FILES, TextLine, TextReader, _join_words, _worth_keeping, _Reading,
    detect_quads,
)
from tests.perception.test_triton_model_files import _backend_utils

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
MODEL_DIR = REPOSITORY / "text_reader" / "1"
PHOTOS = {photo.name: photo for photo in REAL_PHOTOS}
ENGLISH = ("GRAND OPENING SALE", "Fresh Coffee 3000")
KOREAN = ("할인 행사", "커피 전문점")
PLAIN = (245, 240, 230)


@pytest.fixture(scope="module")
def font_file() -> Path:
    try:
        return korean_font_path()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def reader() -> TextReader:
    try:
        return TextReader(MODEL_DIR, threads=2)
    except FileNotFoundError as exc:  # names `make model-repository`
        pytest.fail(str(exc))


def _render(background: Image.Image, lines, font_file: Path, size: int, at: tuple[float, float], style: str):
    """The background with ``lines`` drawn on it, letterboxed to the model input, and each line's box there."""
    image = background.convert("RGBA")
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.truetype(str(font_file), size)
    x, y = int(at[0] * image.width), int(at[1] * image.height)
    step = int(size * 1.6)
    if style == "banner":  # white text on a translucent dark band, as posters and captions have
        width = max(draw.textlength(text, font=font) for text in lines)
        draw.rectangle((x - 12, y - 10, x + width + 12, y + step * len(lines)), fill=(0, 0, 0, 140))
    boxes = []
    for text in lines:
        options = {"dark": {"fill": (20, 20, 20, 255)},
                   "outlined": {"fill": (255, 255, 255, 255), "stroke_width": 2, "stroke_fill": (0, 0, 0, 255)},
                   "banner": {"fill": (255, 255, 255, 255)}}[style]
        draw.text((x, y), text, font=font, **options)
        boxes.append(draw.textbbox((x, y), text, font=font))
        y += step
    pixels, placement = letterbox(Image.alpha_composite(image, layer).convert("RGB"), INPUT_SIZE)
    in_input = [[value * placement.scale + (placement.pad_x, placement.pad_y)[i % 2] for i, value in enumerate(box)]
                for box in boxes]
    return pixels, in_input


def _edits(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, char_b in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (char_a != char_b))
    return row[-1]


def _has_word(lines: list[TextLine], word: str, edits: int) -> bool:
    """``word`` somewhere in the lines (case and spacing ignored), within ``edits`` character edits."""
    text = "".join(line.text for line in lines).replace(" ", "").lower()
    word = word.lower()
    widths = range(max(1, len(word) - edits), len(word) + edits + 1)
    return any(_edits(word, text[start:start + width]) <= edits for width in widths for start in range(len(text)))


def _overlap(box, other) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    height = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    union = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1]) - width * height
    return width * height / union


def _assert_read(reader: TextReader, pixels: np.ndarray, lines, edits: int) -> list[TextLine]:
    (found,) = reader.read(pixels[None])
    readings = [(line.text, round(line.score, 3)) for line in found]
    for word in (word for line in lines for word in line.split()):
        assert _has_word(found, word, edits), f"{word!r} not read; read {readings}"
    assert all(line.score >= LINE_SCORE_THRESHOLD for line in found)
    return found


def test_english_on_a_plain_background_is_read_where_it_is(reader, font_file):
    pixels, boxes = _render(Image.new("RGB", (1280, 800), PLAIN), ENGLISH, font_file, 56, (0.1, 0.15), "dark")
    found = _assert_read(reader, pixels, ENGLISH, edits=0)
    assert [line.text for line in found] == list(ENGLISH)  # whole lines, in reading order
    for line, box in zip(found, boxes):
        assert _overlap(line.box, box) > 0.5, (line, box)


def test_korean_on_a_plain_background_is_read(reader, font_file):
    pixels, boxes = _render(Image.new("RGB", (1280, 800), PLAIN), KOREAN, font_file, 56, (0.1, 0.15), "dark")
    found = _assert_read(reader, pixels, KOREAN, edits=1)
    assert len(found) == len(KOREAN)
    for line, box in zip(found, boxes):
        assert _overlap(line.box, box) > 0.5, (line, box)


def test_a_line_mixing_korean_and_english_is_read_whole(reader, font_file):
    mixed = ("커피 COFFEE 3000",)
    pixels, _ = _render(Image.new("RGB", (1280, 800), PLAIN), mixed, font_file, 40, (0.1, 0.15), "dark")
    _assert_read(reader, pixels, mixed, edits=1)


def test_outlined_english_over_a_photo_is_read(reader, font_file):
    coffee = Image.fromarray(PHOTOS["coffee"].pixels())
    pixels, _ = _render(coffee, ENGLISH, font_file, 32, (0.03, 0.05), "outlined")
    _assert_read(reader, pixels, ENGLISH, edits=0)


def test_korean_on_a_translucent_band_over_a_photo_is_read(reader, font_file):
    coffee = Image.fromarray(PHOTOS["coffee"].pixels())
    pixels, _ = _render(coffee, KOREAN, font_file, 32, (0.3, 0.6), "banner")
    _assert_read(reader, pixels, KOREAN, edits=1)


def test_photos_without_text_give_no_lines(reader):
    names = ("chelsea", "flower")
    pixels = np.stack([letterbox(Image.fromarray(PHOTOS[name].pixels()), INPUT_SIZE)[0] for name in names])
    found = reader.read(pixels)
    assert found == [[] for _ in names], found


def test_a_batch_reads_each_image_on_its_own(reader, font_file):
    english, _ = _render(Image.new("RGB", (1280, 800), PLAIN), ENGLISH[:1], font_file, 56, (0.1, 0.15), "dark")
    blank = np.full_like(english, 114)
    first, second, third = reader.read(np.stack([blank, english, blank]))
    assert first == [] and third == [] and [line.text for line in second] == [ENGLISH[0]]


def test_the_reader_refuses_pixels_it_cannot_read(reader):
    with pytest.raises(ValueError, match="uint8"):
        reader.read(np.zeros((1, 960, 960, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="multiples of 32"):
        reader.read(np.zeros((1, 950, 960, 3), dtype=np.uint8))


def test_missing_model_files_name_the_make_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="make model-repository"):
        TextReader(tmp_path)


def test_a_text_region_becomes_one_box_grown_around_it():
    probability = np.zeros((96, 192), dtype=np.float32)
    probability[40:56, 30:150] = 0.9  # DB marks a shrunken core of each line
    ((corners, score),) = detect_quads(probability)
    assert score == pytest.approx(0.9, abs=0.1)  # the box rim, just outside the core, counts too
    x1, y1 = corners.min(axis=0)
    x2, y2 = corners.max(axis=0)
    assert x1 < 30 and y1 < 40 and x2 > 150 and y2 > 56  # grown back beyond the core
    assert x2 - x1 < 150 and y2 - y1 < 40


def test_tesseract_words_are_joined_as_written():
    # (text, confidence, left, right, height): syllables split with no gap are one word
    words = [("행사", 0.9, 120, 170, 30), ("할", 0.8, 10, 40, 30), ("인", 0.7, 42, 70, 30)]
    assert _join_words(words) == _Reading("할인 행사", pytest.approx(0.8))
    assert _join_words([("Fresh", 0.9, 0, 50, 30), ("Coffee", 0.9, 52, 110, 30)]).text == "Fresh Coffee"


@pytest.mark.parametrize(("text", "score", "kept"), [
    ("커피", 0.7, True), ("커피", LINE_SCORE_THRESHOLD - 0.01, False), ("O", 0.8, False), ("7", 0.95, True),
    ("0)", 0.81, False), ("", 0.99, False), ("..", 0.99, False),
])
def test_unsure_lines_and_lone_characters_are_dropped(text, score, kept):
    assert _worth_keeping(_Reading(text, score)) is kept


def _load_triton_model(monkeypatch, repository: Path):
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _backend_utils())
    spec = importlib.util.spec_from_file_location("text_reader_model", REPOSITORY / "text_reader" / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    parameters = {"providers": "CPUExecutionProvider", "intra_op_threads": "2"}
    model.initialize({
        "model_config": json.dumps({"parameters": {key: {"string_value": value} for key, value in parameters.items()}}),
        "model_repository": str(repository / "text_reader"),
        "model_version": "1",
    })
    return model


def test_the_triton_model_answers_each_request_of_a_mixed_batch(monkeypatch, font_file):
    if not all((MODEL_DIR / name).exists() for name in MODEL_FILES):
        pytest.fail(f"{MODEL_DIR} lacks the PP-OCRv4 graphs: run `make model-repository`")
    model = _load_triton_model(monkeypatch, REPOSITORY)
    english, _ = _render(Image.new("RGB", (1280, 800), PLAIN), ENGLISH, font_file, 56, (0.1, 0.15), "dark")
    read, wrong_size = model.execute([{"PIXELS": english[None]}, {"PIXELS": np.zeros((1, 416, 416, 3), np.uint8)}])
    assert read.error is None and read.outputs["LINES"].shape == (1, 1)
    lines = json.loads(read.outputs["LINES"][0, 0].decode())
    assert [line["text"] for line in lines] == list(ENGLISH)
    assert all(set(line) == {"text", "score", "box"} and len(line["box"]) == 4 for line in lines)
    assert wrong_size.error.code == "INVALID_ARG" and "960" in wrong_size.error.message


def test_the_triton_model_without_its_files_names_the_make_target(monkeypatch, tmp_path):
    with pytest.raises(Exception, match="make model-repository") as raised:
        _load_triton_model(monkeypatch, tmp_path)
    assert type(raised.value).__name__ == "TritonModelException"


def test_an_image_that_fails_fails_only_its_own_request(monkeypatch, font_file):
    model = _load_triton_model(monkeypatch, REPOSITORY)
    read = model.reader.read

    def read_unless_white(pixels):
        if (pixels == 255).all(axis=(1, 2, 3)).any():
            raise RuntimeError("unreadable")
        return read(pixels)

    monkeypatch.setattr(model.reader, "read", read_unless_white)
    english, _ = _render(Image.new("RGB", (1280, 800), PLAIN), ENGLISH[:1], font_file, 56, (0.1, 0.15), "dark")
    good, failing = model.execute([{"PIXELS": english[None]}, {"PIXELS": np.full((1, 960, 960, 3), 255, np.uint8)}])
    assert good.error is None and json.loads(good.outputs["LINES"][0, 0].decode())[0]["text"] == ENGLISH[0]
    assert failing.error.code == "INTERNAL" and "unreadable" in failing.error.message
