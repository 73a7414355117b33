"""The shipped ``captioner`` model through the real Triton on generated scenes: routing to the scene
captioner, batching, correctness, per-request errors."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest

from captioner.dataset import split_rules
from captioner.images import decode_image
from captioner.keywords import caption_keywords
from captioner.render import render
from captioner.runtime import OnnxCaptioner
from captioner.scenes import SceneSampler
from captioning_common.settings import TritonSettings
from captioning_common.triton import triton_client, wait_until_ready
from perception.evaluation import score_answer
from perception.real_photos import REAL_PHOTOS
from services.caption.triton_captioner import CaptionRejected, TritonCaptioner
from tests.conftest import REPO_ROOT
from tests.integration.captioner_client import png_bytes, run
from tests.integration.triton_metrics import counters, counters_after

MODEL = "captioner"
EXPORTED = REPO_ROOT / "model_repository" / "scene_captioner" / "1" / "student"


@pytest.fixture(scope="module")
def captioner_triton(triton: TritonSettings) -> TritonSettings:
    wait_until_ready(triton_client(triton, "http"), MODEL)
    return triton


def scene_images(count: int, seed: int) -> list[bytes]:
    sampler = SceneSampler(seed, split_rules()["test"])
    images = []
    for index in range(count):
        image = render(sampler.sample(), index)
        if index % 3 == 0:  # some JPEG, some PNG, some WebP
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=92)
            images.append(buffer.getvalue())
        elif index % 3 == 1:
            images.append(png_bytes(image))
        else:
            buffer = io.BytesIO()
            image.save(buffer, format="WEBP", lossless=True)
            images.append(buffer.getvalue())
    return images


def expected(images: list[bytes], languages: list[str]):
    runtime = OnnxCaptioner(EXPORTED)
    pixels = np.stack([decode_image(data, runtime.config.image_size) for data in images])
    return runtime.caption(pixels, languages)


def test_64_concurrent_requests_are_batched_and_answered_correctly(captioner_triton: TritonSettings) -> None:
    images = scene_images(64, seed=42)
    languages = ["en" if i % 2 == 0 else "ko" for i in range(64)]
    requests_before, executions_before = counters(captioner_triton, MODEL)
    answers = run(captioner_triton, list(zip(images, languages)))
    requests_after, executions_after = counters_after(captioner_triton, MODEL, requests_before + 64)

    assert all(isinstance(answer, dict) for answer in answers), [a for a in answers if not isinstance(a, dict)][:1]
    reference = expected(images, languages)
    assert [a["caption"] for a in answers] == [g.text for g in reference]
    for answer, generated, language in zip(answers, reference, languages):
        assert answer["keywords"] == caption_keywords(generated.text, language)
        assert answer["score"] == pytest.approx(generated.score, abs=1e-4)
    assert requests_after - requests_before == 64
    executions = executions_after - executions_before
    assert executions < 64, f"{executions} executions for 64 requests: no dynamic batching"
    print(f"64 requests in {executions:.0f} executions; e.g. {answers[0]['caption']!r} / {answers[1]['caption']!r}")


def test_a_corrupt_image_fails_alone_while_its_batch_succeeds(captioner_triton: TritonSettings) -> None:
    images = scene_images(15, seed=7)
    good_jpeg = images[0]
    corrupt = good_jpeg[: len(good_jpeg) // 3]
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"
    items = [(data, "en") for data in images]
    items.insert(5, (corrupt, "en"))
    items.insert(9, (pdf, "en"))
    items.insert(12, (images[1], "fr"))
    requests_before, executions_before = counters(captioner_triton, MODEL)
    answers = run(captioner_triton, items)
    requests_after, executions_after = counters_after(captioner_triton, MODEL, requests_before + 18)

    assert "undecodable" in str(answers[5])
    assert "unsupported" in str(answers[9]) and "format" in str(answers[9])
    assert "unsupported language 'fr'" in str(answers[12])
    good = [a for i, a in enumerate(answers) if i not in (5, 9, 12)]
    assert [a["caption"] for a in good] == [g.text for g in expected(images, ["en"] * 15)]
    assert requests_after - requests_before == 18
    assert executions_after - executions_before < 18, "the requests should have shared executions"


def test_photos_and_scenes_in_one_burst_each_reach_their_captioner(captioner_triton: TritonSettings) -> None:
    scenes = scene_images(16, seed=11)
    photos = [photo.jpeg() for photo in REAL_PHOTOS]
    items = [(data, language) for data in scenes + photos for language in ("en", "ko")]
    answers = run(captioner_triton, items)
    assert all(isinstance(answer, dict) for answer in answers), [a for a in answers if not isinstance(a, dict)][:1]
    scene_answers, photo_answers = answers[: 2 * len(scenes)], answers[2 * len(scenes) :]
    reference = expected([data for data in scenes for _ in (0, 1)], ["en", "ko"] * len(scenes))
    assert [a["caption"] for a in scene_answers] == [g.text for g in reference]
    assert {a["route"] for a in scene_answers} == {"scene_world"}
    assert all(a["tags"] == a["objects"] == a["text"] == [] for a in scene_answers)
    for index, photo in enumerate(REAL_PHOTOS):
        for language, answer in zip(("en", "ko"), photo_answers[2 * index : 2 * index + 2]):
            score = score_answer(photo, answer, language)
            assert answer["route"] == "real_world" and score.names_subject and not score.shape_words, (photo.name, answer)
        english, korean = photo_answers[2 * index : 2 * index + 2]
        assert (english["tags"], english["objects"]) == (korean["tags"], korean["objects"])  # understood once per image


def test_one_request_carries_every_language_and_batches_with_single_language_requests(captioner_triton: TritonSettings) -> None:
    """The caption service's client asks for English and Korean at once; other clients' one-language requests share the batches."""
    scenes = scene_images(12, seed=13)
    photos = [photo.jpeg() for photo in REAL_PHOTOS[:3]]
    images = scenes + photos

    async def burst():
        captioner = TritonCaptioner(captioner_triton, MODEL)
        try:
            both = asyncio.gather(*(captioner.caption(data, ["en", "ko"]) for data in images))
            korean_first = asyncio.gather(*(captioner.caption(data, ["ko", "en"]) for data in photos))
            return await asyncio.gather(both, korean_first)
        finally:
            await captioner.close()

    requests_before, executions_before = counters(captioner_triton, MODEL)
    both, korean_first = asyncio.run(burst())
    alone = run(captioner_triton, [(data, language) for data in images for language in ("en", "ko")])
    requests_after, executions_after = counters_after(captioner_triton, MODEL, requests_before + len(images) + len(photos) + len(alone))
    assert executions_after - executions_before < requests_after - requests_before, "the requests should have shared executions"

    assert [[c.language for c in answer.captions] for answer in both] == [["en", "ko"]] * len(images)
    reference = expected([data for data in scenes for _ in (0, 1)], ["en", "ko"] * len(scenes))
    assert [c.text for answer in both[: len(scenes)] for c in answer.captions] == [g.text for g in reference]
    assert [(c.text, c.keywords) for answer in both for c in answer.captions] == [(a["caption"], a["keywords"]) for a in alone]
    assert [c.score for answer in both for c in answer.captions] == pytest.approx([a["score"] for a in alone], abs=1e-4)
    assert [a.route for a in both] == ["scene_world"] * len(scenes) + ["real_world"] * len(photos)
    for answer, reversed_answer in zip(both[len(scenes) :], korean_first):
        assert [(c.language, c.text) for c in reversed_answer.captions] == [(c.language, c.text) for c in reversed(answer.captions)]
        assert (reversed_answer.tags, reversed_answer.objects) == (answer.tags, answer.objects)


@pytest.mark.parametrize("languages, reason", [(["en", "en"], "twice"), (["en", "fr"], "unsupported language 'fr'"), ([], "LANGUAGE")])
def test_a_request_with_bad_languages_is_rejected_with_its_reason(captioner_triton: TritonSettings, languages: list[str], reason: str) -> None:
    async def ask():
        captioner = TritonCaptioner(captioner_triton, MODEL)
        try:
            return await captioner.caption(scene_images(1, seed=17)[0], languages)
        finally:
            await captioner.close()

    with pytest.raises(CaptionRejected, match=reason):
        asyncio.run(ask())
