"""The multilingual embedder: normalised vectors, and queries that find captions across English and Korean."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from services.indexing.embedder import Embedder

ENGLISH = [
    "a photo of a tabby cat",
    "a photo of a cup of espresso",
    "a photo of a motorcycle",
    "a photo of an astronaut in a space suit",
    "a photo of a rocket on a launch pad",
    "a photo of a red flower in a garden",
    "a photo of a city street at night",
    "a photo of a plate of pasta",
    "a photo of a dog on the beach",
    "a photo of a mountain lake",
]
KOREAN = [
    "얼룩 고양이 사진",
    "에스프레소 한 잔 사진",
    "오토바이 사진",
    "우주복을 입은 우주비행사 사진",
    "발사대 위의 로켓 사진",
    "정원의 빨간 꽃 사진",
    "밤의 도시 거리 사진",
    "파스타 한 접시 사진",
    "해변의 개 사진",
    "산속 호수 사진",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def _best(embedder: Embedder, query: str, captions: list[str]) -> str:
    scores = embedder.encode(captions) @ embedder.encode([query])[0]
    return captions[int(np.argmax(scores))]


def test_vectors_are_float32_unit_length(embedder: Embedder) -> None:
    vectors = embedder.encode(["a photo of a cat", "고양이 사진", ""])
    assert vectors.dtype == np.float32 and vectors.shape == (3, embedder.dimension) == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 512)


@pytest.mark.parametrize(
    ("query", "expected"),
    [("고양이", ENGLISH[0]), ("커피 한 잔", ENGLISH[1]), ("오토바이", ENGLISH[2]), ("우주비행사", ENGLISH[3])],
)
def test_korean_query_ranks_the_matching_english_caption_first(embedder: Embedder, query: str, expected: str) -> None:
    assert _best(embedder, query, ENGLISH) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [("cat", KOREAN[0]), ("a cup of coffee", KOREAN[1]), ("motorcycle", KOREAN[2]), ("rocket", KOREAN[4])],
)
def test_english_query_ranks_the_matching_korean_caption_first(embedder: Embedder, query: str, expected: str) -> None:
    assert _best(embedder, query, KOREAN) == expected


def test_batches_and_threads_give_the_vectors_of_single_calls(embedder: Embedder) -> None:
    single = np.stack([embedder.encode([text])[0] for text in ENGLISH])
    np.testing.assert_allclose(embedder.encode(ENGLISH), single, atol=1e-5)
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda text: embedder.encode([text])[0], ENGLISH))
    np.testing.assert_allclose(np.stack(threaded), single, atol=1e-5)
