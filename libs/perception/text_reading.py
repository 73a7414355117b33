"""Reading text in images: PP-OCRv4 detection and recognition on ONNX Runtime, Tesseract for Korean.

Detection is DB (differentiable binarisation): the network gives a per-pixel text
probability; regions above a threshold become boxes, scored by their mean probability
and grown back by the margin DB shrinks text by in training. Each box is cut out, turned
upright and read by the PP-OCRv4 recogniser (CTC, greedy decoding). That recogniser knows
Latin letters, digits and Chinese but no Hangul: on Korean text it emits ideographs,
look-alike symbols or a poor reading, so such lines are read again by Tesseract
(``kor+eng``, one line per crop) and the better reading is kept.

Pixels are RGB; the PP-OCR networks were trained on BGR images (OpenCV's order).
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pyclipper

from captioning_common.onnx import session_options
from perception.tesseract import DEFAULT_DIR, tesseract_command

INPUT_SIZE = 960
DETECTION_MODEL = "ch_PP-OCRv4_det_infer.onnx"
RECOGNITION_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
MODEL_FILES = (DETECTION_MODEL, RECOGNITION_MODEL)

# DB post-processing, as PP-OCR ships it.
PIXEL_THRESHOLD = 0.3  # text probability that makes a pixel part of a text region
BOX_THRESHOLD = 0.5  # mean probability inside a region for it to become a box
UNCLIP_RATIO = 1.6  # boxes grow by area * ratio / perimeter on every side
MIN_BOX_SIDE = 3  # pixels; thinner regions are specks
MAX_CANDIDATES = 1000

RECOGNITION_HEIGHT = 48
RECOGNITION_MIN_WIDTH = 320
RECOGNITION_BATCH = 16
VERTICAL_ASPECT = 1.5  # a crop this much taller than wide holds vertical text: turned to read it

LINE_SCORE_THRESHOLD = 0.6  # lines read less confidently are dropped
RECHECK_SCORE = 0.9  # PP-OCR readings below this confidence, or beyond ASCII, are read by Tesseract too
SINGLE_CHARACTER_SCORE = 0.9  # a line with a single letter or digit is kept only above this
TESSERACT_LANGUAGES = "kor+eng"
TESSERACT_MIN_ASPECT = 1.8  # crops narrower than this many heights are not read by Tesseract
TESSERACT_LINE_HEIGHTS = (32, 48)  # pixels; Tesseract misses lines of sizes it does not expect
TESSERACT_TIMEOUT_S = 60.0
HANGUL_JOINED_GAP = 0.25  # of the line height: a narrower gap between Hangul syllables is no word space


@dataclass(frozen=True)
class TextLine:
    """One line of text: what it says, how sure the reader is (0..1), its box in input pixels."""

    text: str
    score: float
    box: tuple[int, int, int, int]  # x1, y1, x2, y2

    def as_json(self) -> dict:
        return {"text": self.text, "score": round(self.score, 4), "box": list(self.box)}


@dataclass(frozen=True)
class _Reading:
    text: str
    score: float


class TextReader:
    """Reads the text lines of RGB images (``[N, H, W, 3]`` uint8, H and W multiples of 32)."""

    def __init__(self, model_dir: Path, providers: Sequence = ("CPUExecutionProvider",),
                 recognition_providers: Sequence | None = None, threads: int = 0,
                 tesseract_dir: Path = DEFAULT_DIR, detection_batch: int = 1) -> None:
        """``recognition_providers`` default to ``providers``; ``threads`` 0 lets ONNX Runtime choose.

        ``detection_batch`` images go through the detector at once: on a CPU one at a time is
        fastest (a batch of 960x960 feature maps overflows the caches), a GPU wants more.
        """
        if detection_batch < 1:
            raise ValueError(f"detection_batch must be at least 1, got {detection_batch}")
        self.detection_batch = detection_batch
        missing = [name for name in MODEL_FILES if not (model_dir / name).exists()]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} missing in {model_dir}: run `make model-repository`")
        options = session_options(threads)
        options.log_severity_level = 3  # the PP-OCR graphs carry unused initialisers ORT warns about
        self.detector = ort.InferenceSession(str(model_dir / DETECTION_MODEL), options, providers=list(providers))
        self.recogniser = ort.InferenceSession(str(model_dir / RECOGNITION_MODEL), options,
                                               providers=list(recognition_providers or providers))
        dictionary = self.recogniser.get_modelmeta().custom_metadata_map.get("character")
        if not dictionary:
            raise ValueError(f"{RECOGNITION_MODEL} carries no character dictionary in its metadata")
        # CTC class 0 is the blank; the dictionary follows, then the space.
        self.characters = ["", *dictionary.splitlines(), " "]
        self.tesseract, self.tesseract_env = tesseract_command(tesseract_dir)

    def read(self, pixels: np.ndarray) -> list[list[TextLine]]:
        """The text lines of every image, top to bottom and left to right."""
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"pixels must be uint8 [N, H, W, 3], got {pixels.dtype} {pixels.shape}")
        if pixels.shape[1] % 32 or pixels.shape[2] % 32:
            raise ValueError(f"height and width must be multiples of 32, got {pixels.shape[1]}x{pixels.shape[2]}")
        bgr = np.ascontiguousarray(pixels[..., ::-1])
        input_name = self.detector.get_inputs()[0].name
        probabilities = np.concatenate([
            self.detector.run(None, {input_name: _normalise(bgr[start:start + self.detection_batch])})[0][:, 0]
            for start in range(0, len(bgr), self.detection_batch)
        ])
        quads = [_sorted_quads(detect_quads(probability)) for probability in probabilities]
        crops = [_upright_crop(image, quad) for image, image_quads in zip(bgr, quads) for quad in image_quads]
        readings = self._recognise(crops)
        recheck = [i for i, (crop, reading) in enumerate(zip(crops, readings)) if _needs_tesseract(crop, reading)]
        for index, second in zip(recheck, self._tesseract([crops[i] for i in recheck])):
            readings[index] = _preferred(readings[index], second)
        results, position = [], 0
        for image_quads in quads:
            lines = []
            for quad, reading in zip(image_quads, readings[position:position + len(image_quads)]):
                if _worth_keeping(reading):
                    x1, y1 = np.floor(quad.min(axis=0)).astype(int)
                    x2, y2 = np.ceil(quad.max(axis=0)).astype(int)
                    lines.append(TextLine(reading.text, reading.score, (int(x1), int(y1), int(x2), int(y2))))
            results.append(lines)
            position += len(image_quads)
        return results

    def _recognise(self, crops: list[np.ndarray]) -> list[_Reading]:
        readings: list[_Reading | None] = [None] * len(crops)
        # Crops of similar shape share a batch, so little of it is padding.
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
        input_name = self.recogniser.get_inputs()[0].name
        for start in range(0, len(order), RECOGNITION_BATCH):
            chunk = order[start:start + RECOGNITION_BATCH]
            batch = _recognition_batch([crops[i] for i in chunk])
            probabilities = self.recogniser.run(None, {input_name: batch})[0]
            for i, row in zip(chunk, probabilities):
                readings[i] = self._decode(row)
        return readings

    def _decode(self, probabilities: np.ndarray) -> _Reading:
        best = probabilities.argmax(axis=1)
        confidence = probabilities.max(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        if not keep.any():
            return _Reading("", 0.0)
        text = "".join(self.characters[i] for i in best[keep])
        return _Reading(text.strip(), float(confidence[keep].mean()))

    def _tesseract(self, crops: list[np.ndarray]) -> list[_Reading]:
        """Tesseract's best reading of each crop over its variants (see ``_tesseract_variants``)."""
        if not crops:
            return []
        variants = [_tesseract_variants(crop) for crop in crops]
        with tempfile.TemporaryDirectory(prefix="text-reader-") as folder:
            paths = []
            for index, image in enumerate(image for images in variants for image in images):
                path = Path(folder) / f"{index}.png"
                cv2.imwrite(str(path), image)
                paths.append(str(path))
            listing = Path(folder) / "crops.txt"
            listing.write_text("\n".join(paths) + "\n")
            result = subprocess.run(
                [self.tesseract, str(listing), "stdout", "-l", TESSERACT_LANGUAGES, "--psm", "7", "tsv"],
                capture_output=True, encoding="utf-8", env=self.tesseract_env, timeout=TESSERACT_TIMEOUT_S,
            )
        if result.returncode != 0:
            raise RuntimeError(f"tesseract failed: {result.stderr.strip()}")
        pages = iter(_parse_tsv(result.stdout, len(paths)))
        return [max((next(pages) for _ in images), key=lambda reading: reading.score) for images in variants]


def detect_quads(probability: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(corners [4, 2] float32 clockwise from top-left, score) of the text regions of one probability map."""
    height, width = probability.shape
    mask = (probability > PIXEL_THRESHOLD).astype(np.uint8)
    # Dilation bridges the one-pixel gaps between the characters of a word.
    mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    for contour in contours[:MAX_CANDIDATES]:
        rectangle = cv2.minAreaRect(contour)
        if min(rectangle[1]) < MIN_BOX_SIDE:
            continue
        corners = cv2.boxPoints(rectangle)
        score = _mean_inside(probability, corners)
        if score < BOX_THRESHOLD:
            continue
        rectangle = cv2.minAreaRect(_unclip(corners))
        if min(rectangle[1]) < MIN_BOX_SIDE + 2:
            continue
        corners = _clockwise(cv2.boxPoints(rectangle))
        corners[:, 0] = np.clip(corners[:, 0], 0, width)
        corners[:, 1] = np.clip(corners[:, 1], 0, height)
        found.append((corners.astype(np.float32), score))
    return found


def _normalise(bgr: np.ndarray) -> np.ndarray:
    """float32 NCHW in -1..1 from uint8 NHWC."""
    return np.ascontiguousarray((bgr.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2))


def _mean_inside(probability: np.ndarray, corners: np.ndarray) -> float:
    height, width = probability.shape
    x1, y1 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [width - 1, height - 1])
    x2, y2 = np.clip(np.ceil(corners.max(axis=0)).astype(int), 0, [width - 1, height - 1])
    mask = np.zeros((y2 - y1 + 1, x2 - x1 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(corners - [x1, y1]).astype(np.int32)], 1)
    return float(cv2.mean(probability[y1:y2 + 1, x1:x2 + 1], mask)[0])


def _unclip(corners: np.ndarray) -> np.ndarray:
    area = cv2.contourArea(corners)
    perimeter = cv2.arcLength(corners, closed=True)
    offset = pyclipper.PyclipperOffset()
    offset.AddPath([tuple(point) for point in corners.tolist()], pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    expanded = offset.Execute(area * UNCLIP_RATIO / max(perimeter, 1e-6))
    points = max(expanded, key=len) if expanded else corners.tolist()
    return np.array(points, dtype=np.float32)


def _clockwise(corners: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left."""
    by_x = corners[np.argsort(corners[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def _sorted_quads(found: list[tuple[np.ndarray, float]]) -> list[np.ndarray]:
    """Corners in reading order: rows top to bottom (a box whose centre lies within a row joins it), left to right."""
    rows: list[list[np.ndarray]] = []
    for corners, _ in sorted(found, key=lambda item: item[0][:, 1].min()):
        centre = corners[:, 1].mean()
        if rows and rows[-1][0][:, 1].min() <= centre <= rows[-1][0][:, 1].max():
            rows[-1].append(corners)
        else:
            rows.append([corners])
    return [corners for row in rows for corners in sorted(row, key=lambda c: c[:, 0].min())]


def _upright_crop(image: np.ndarray, corners: np.ndarray) -> np.ndarray:
    top_left, top_right, bottom_right, bottom_left = corners
    width = max(1, round(max(np.linalg.norm(top_right - top_left), np.linalg.norm(bottom_right - bottom_left))))
    height = max(1, round(max(np.linalg.norm(bottom_left - top_left), np.linalg.norm(bottom_right - top_right))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    transform = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    crop = cv2.warpPerspective(image, transform, (width, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
    if height >= VERTICAL_ASPECT * width:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


def _recognition_batch(crops: list[np.ndarray]) -> np.ndarray:
    """float32 [B, 3, 48, W]: each crop scaled to the height, normalised, zero-padded on the right."""
    ratios = [crop.shape[1] / crop.shape[0] for crop in crops]
    width = max(RECOGNITION_MIN_WIDTH, math.ceil(RECOGNITION_HEIGHT * max(ratios)))
    batch = np.zeros((len(crops), 3, RECOGNITION_HEIGHT, width), dtype=np.float32)
    for slot, (crop, ratio) in enumerate(zip(crops, ratios)):
        scaled_width = min(width, max(1, math.ceil(RECOGNITION_HEIGHT * ratio)))
        scaled = cv2.resize(crop, (scaled_width, RECOGNITION_HEIGHT), interpolation=cv2.INTER_LINEAR)
        batch[slot, :, :, :scaled_width] = _normalise(scaled[None])[0]
    return batch


def _needs_tesseract(crop: np.ndarray, reading: _Reading) -> bool:
    # Blobs about as wide as tall (eyes, petals, wheels) are what Tesseract reads text into.
    line_shaped = crop.shape[1] >= TESSERACT_MIN_ASPECT * crop.shape[0]
    return line_shaped and (reading.score < RECHECK_SCORE or not reading.text.isascii())


def _preferred(recognised: _Reading, tesseract: _Reading) -> _Reading:
    # The recogniser knows no Hangul; it reads Korean as ideographs or look-alike symbols
    # (such as Ⅲ), often confidently. Beyond ASCII, its reading of a line Tesseract reads as Hangul is Korean misread.
    if not recognised.text.isascii() and any(map(_is_hangul, tesseract.text)):
        return tesseract
    return tesseract if tesseract.score > recognised.score else recognised


def _is_hangul(character: str) -> bool:
    return 0xAC00 <= ord(character) <= 0xD7A3


def _tesseract_variants(crop: np.ndarray) -> list[np.ndarray]:
    """Black-on-white views of the crop at each of ``TESSERACT_LINE_HEIGHTS``.

    Tesseract reads dark text on an even, light background, and its line finder drops
    lines of sizes it does not expect. Photographs have uneven light, texture and light
    text. The views: the text's colour alone, and Otsu's threshold after dividing by the
    background (a closing wider than any stroke), once for dark and once for light text.
    Which view works differs from line to line; Tesseract's most confident reading decides.
    """
    variants = []
    for height in TESSERACT_LINE_HEIGHTS:
        width = max(1, round(crop.shape[1] * height / crop.shape[0]))
        shrink = crop.shape[0] > height
        colour = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        scaled = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
        margin = height // 4  # Tesseract finds no line that touches the image edge
        variants.append(cv2.copyMakeBorder(_text_colour_mask(colour), margin, margin, margin, margin,
                                           cv2.BORDER_CONSTANT, value=255))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (height // 3 | 1, height // 3 | 1))
        for dark_text in (scaled, 255 - scaled):
            flat = cv2.divide(dark_text, cv2.morphologyEx(dark_text, cv2.MORPH_CLOSE, kernel), scale=255)
            _, binary = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            variants.append(cv2.copyMakeBorder(binary, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255))
    return variants


def _text_colour_mask(colour: np.ndarray) -> np.ndarray:
    """Black where the crop has the colour of its text, white elsewhere.

    The crop's colours fall into three clusters (text, background, and an outline or
    texture); the text's is the one that keeps off the crop's border most.
    """
    lab = cv2.cvtColor(colour, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    # k-means from the darkest, median and brightest pixel: deterministic, unlike random seeding.
    order = np.argsort(lab[:, 0], kind="stable")
    centres = lab[order[[0, len(order) // 2, -1]]]
    for _ in range(8):
        labels = np.argmin(((lab[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        centres = np.array([lab[labels == k].mean(axis=0) if (labels == k).any() else centres[k] for k in range(3)])
    labels = labels.reshape(colour.shape[:2])
    border = np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1]))
    overall = np.bincount(labels.ravel(), minlength=3) / labels.size
    on_border = np.bincount(border, minlength=3) / border.size
    # A cluster of a few pixels is noise, not text.
    text = int(np.argmin(np.where(overall > 0.05, on_border / np.maximum(overall, 1e-6), np.inf)))
    return np.where(labels == text, 0, 255).astype(np.uint8)


def _parse_tsv(tsv: str, pages: int) -> list[_Reading]:
    """One reading per page of Tesseract's TSV: its words in a line, their mean confidence 0..1."""
    words: list[list[tuple[str, float, int, int, int]]] = [[] for _ in range(pages)]
    for row in tsv.splitlines()[1:]:
        fields = row.split("\t")
        if len(fields) != 12 or fields[0] != "5":
            continue
        page, confidence, text = int(fields[1]) - 1, float(fields[10]), fields[11].strip()
        # Tesseract reads texture at a line's ends as stray punctuation.
        if 0 <= page < pages and confidence >= 0 and any(character.isalnum() for character in text):
            left, width, height = int(fields[6]), int(fields[8]), int(fields[9])
            words[page].append((text, confidence / 100.0, left, left + width, height))
    return [_join_words(page) for page in words]


def _join_words(words: list[tuple[str, float, int, int, int]]) -> _Reading:
    """Words left to right; Hangul syllables Tesseract split apart with no real gap are joined again."""
    if not words:
        return _Reading("", 0.0)
    words = sorted(words, key=lambda word: word[2])
    joined_gap = HANGUL_JOINED_GAP * float(np.median([word[4] for word in words]))
    text = words[0][0]
    for (previous, _, _, previous_right, _), (word, _, left, _, _) in zip(words, words[1:]):
        apart = left - previous_right >= joined_gap or not (_is_hangul(previous[-1]) and _is_hangul(word[0]))
        text += (" " if apart else "") + word
    return _Reading(text, float(np.mean([word[1] for word in words])))


def _worth_keeping(reading: _Reading) -> bool:
    if not reading.text or reading.score < LINE_SCORE_THRESHOLD:
        return False
    letters = [character for character in reading.text if character.isalnum()]
    return len(letters) > 1 or (len(letters) == 1 and reading.score >= SINGLE_CHARACTER_SCORE)
