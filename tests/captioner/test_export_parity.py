"""The shipped student: ONNX export matches PyTorch greedy captions; INT8 agreement is measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from captioner.dataset import generate_split, load_coco, load_pixels
from captioner.decoding import caption_batch
from captioner.evaluation import agreement
from captioner.export import export_onnx, quantize_int8
from captioner.modeling import load_model
from captioner.runtime import OnnxCaptioner
from captioner.tokenizer import load_tokenizer
from tests.conftest import REPO_ROOT

STUDENT = REPO_ROOT / "models" / "student"


@pytest.fixture(scope="module")
def parity_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    examples = load_coco(generate_split(root / "data", "test", 200, seed=101))
    model = load_model(STUDENT)
    tokenizer = load_tokenizer(STUDENT)
    pixels = load_pixels(examples, model.config.encoder.image_size)
    fp32 = export_onnx(STUDENT, root / "fp32")
    int8 = quantize_int8(fp32, root / "int8")
    return model, tokenizer, pixels, fp32, int8


@pytest.mark.parametrize("language", ["en", "ko"])
def test_onnx_fp32_gives_identical_greedy_captions_on_200_images(parity_setup, language: str) -> None:
    model, tokenizer, pixels, fp32, _ = parity_setup
    runtime = OnnxCaptioner(fp32)
    mismatches = []
    for first in range(0, len(pixels), 50):
        chunk = pixels[first : first + 50]
        reference = caption_batch(model, tokenizer, chunk, [language] * len(chunk))
        exported = runtime.caption(chunk, [language] * len(chunk))
        for index, (a, b) in enumerate(zip(reference, exported)):
            if a.token_ids != b.token_ids or a.text != b.text:
                mismatches.append((first + index, a.text, b.text))
            assert abs(a.score - b.score) < 1e-3
    assert mismatches == [], mismatches[:3]


def test_int8_agreement_is_reported(parity_setup) -> None:
    model, tokenizer, pixels, _, int8 = parity_setup
    runtime = OnnxCaptioner(int8)
    languages = ["en" if i % 2 == 0 else "ko" for i in range(len(pixels))]
    rate = agreement(lambda p, l: caption_batch(model, tokenizer, p, l), runtime.caption, pixels, languages)
    print(f"INT8 student agrees with PyTorch on {rate:.1%} of 200 images")
    assert (Path(int8) / "encoder.onnx").stat().st_size < (Path(int8).parent / "fp32" / "encoder.onnx").stat().st_size
    assert rate >= 0.5, f"INT8 agreement {rate:.1%} is too low to ship"
