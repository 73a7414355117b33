"""A Hugging Face checkpoint on disk: load -> export -> serve through the real Triton."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import VisionEncoderDecoderModel

from captioner.images import decode_image
from captioner.runtime import OnnxCaptioner
from captioning_common.triton import triton_client, wait_until_ready
from tests.conftest import REPO_ROOT, start_triton
from tests.integration.captioner_client import SCENE_OUTPUTS, png_bytes, run
from tests.tiny_checkpoint import build_tiny_checkpoint


@pytest.fixture(scope="module")
def served_checkpoint(servers, tmp_path_factory):
    """A tiny random checkpoint exported with the CLI into a copy of the scene captioner's model folder."""
    root = tmp_path_factory.mktemp("hf")
    checkpoint = build_tiny_checkpoint(root / "tiny-vit-gpt2")
    repository = root / "repository"
    shutil.copytree(REPO_ROOT / "model_repository" / "scene_captioner", repository / "scene_captioner",
                    ignore=shutil.ignore_patterns("student*", "trt_cache", "__pycache__"))
    exported = repository / "scene_captioner" / "1" / "student"
    subprocess.run([sys.executable, "-m", "captioner", "export", str(checkpoint), "--out", str(exported)], check=True, cwd=REPO_ROOT)
    settings, component = start_triton(servers, repository, "triton-hf")
    wait_until_ready(triton_client(settings, "http"), "scene_captioner")
    yield checkpoint, exported, settings
    component.stop()


def test_checkpoint_exports_and_serves_the_same_captions_as_pytorch(served_checkpoint) -> None:
    checkpoint, exported, settings = served_checkpoint
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    from PIL import Image

    encoded = [png_bytes(Image.fromarray(image)) for image in images]
    served = run(settings, [(data, "en") for data in encoded], "scene_captioner", SCENE_OUTPUTS)

    runtime = OnnxCaptioner(exported)
    pixels = np.stack([decode_image(data, runtime.config.image_size) for data in encoded])
    local = runtime.caption(pixels, ["en"] * len(pixels))
    assert [s["caption"] for s in served] == [g.text for g in local]

    model = VisionEncoderDecoderModel.from_pretrained(checkpoint).eval()
    start = runtime.config.prompts["en"]
    with torch.no_grad():
        sequences = model.generate(
            pixel_values=torch.from_numpy(runtime.preprocess(pixels)),
            decoder_input_ids=torch.tensor([start] * len(pixels)),
            max_new_tokens=runtime.config.max_new_tokens, do_sample=False, num_beams=1,
        )
    eos = runtime.config.eos_token_id
    for row, generated in zip(sequences.tolist(), local):
        tokens = row[len(start):]
        tokens = tokens[: tokens.index(eos)] if eos in tokens else tokens
        assert tuple(tokens) == generated.token_ids


def test_language_the_checkpoint_lacks_fails_only_that_request(served_checkpoint) -> None:
    _, _, settings = served_checkpoint
    from PIL import Image

    data = png_bytes(Image.new("RGB", (32, 32), "blue"))
    english, korean = run(settings, [(data, "en"), (data, "ko")], "scene_captioner", SCENE_OUTPUTS)
    assert isinstance(english, dict)
    assert isinstance(korean, Exception) and "unsupported language 'ko'" in str(korean)
