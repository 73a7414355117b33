"""The models on their own: Triton's ``captioner`` and ``scene_captioner`` driven directly, and
the naive ``transformers`` loop a new user would write on the scene captioner's checkpoint."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput

from captioning_common.settings import TritonSettings
from captioning_common.triton import triton_client
from services.caption.triton_captioner import TritonCaptioner

LANGUAGES = ["en", "ko"]


def latency_figures(images: int, seconds: float, latencies: list[float]) -> dict[str, float]:
    """Images/s and the p50/p95/p99 of per-request latencies, in seconds."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"images_per_s": images / seconds, "p50_s": statistics.median(latencies), "p95_s": cuts[94], "p99_s": cuts[98]}


async def _in_flight(concurrency: int, items: list, call: Callable[[Any], Awaitable[Any]]) -> tuple[list[float], float]:
    """Await ``call`` on every item with ``concurrency`` calls in flight: (latency of each call, seconds in all)."""
    pending, latencies = iter(items), []

    async def worker() -> None:
        for item in pending:
            sent = time.perf_counter()
            await call(item)
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def captioner_alone(settings: TritonSettings, images: list[bytes], concurrencies: list[int]) -> dict[int, dict[str, float]]:
    """The ``captioner`` driven as the caption service drives it (one request per image, both
    languages), keeping ``n`` requests in flight, for each ``n``."""

    async def drive(concurrency: int) -> dict[str, float]:
        captioner = TritonCaptioner(settings, "captioner")
        try:
            latencies, seconds = await _in_flight(concurrency, images, lambda data: captioner.caption(data, LANGUAGES))
            return latency_figures(len(images), seconds, latencies)
        finally:
            await captioner.close()

    return {concurrency: asyncio.run(drive(concurrency)) for concurrency in concurrencies}


def scene_captioner_alone(settings: TritonSettings, images: list[bytes], concurrency: int) -> dict[str, float]:
    """Triton's ``scene_captioner`` (the trained student in ONNX Runtime, dynamically batched),
    one request per image and language, ``concurrency`` in flight; images/s count images."""

    async def drive() -> dict[str, float]:
        client = triton_client(settings, "grpc-aio")

        async def ask(row: tuple[bytes, str]) -> None:
            image = InferInput("IMAGE", [1, 1], "BYTES")
            image.set_data_from_numpy(np.array([[row[0]]], dtype=np.object_))
            wanted = InferInput("LANGUAGE", [1, 1], "BYTES")
            wanted.set_data_from_numpy(np.array([[row[1].encode()]], dtype=np.object_))
            await client.infer("scene_captioner", [image, wanted], outputs=[InferRequestedOutput("CAPTION")])

        try:
            latencies, seconds = await _in_flight(concurrency, [(data, language) for data in images for language in LANGUAGES], ask)
            return latency_figures(len(images), seconds, latencies)
        finally:
            await client.close()

    return asyncio.run(drive())


def naive_transformers(checkpoint: Path, exported: Path, images: list[bytes], threads: int) -> dict[str, float]:
    """A plain PyTorch loop on the checkpoint: open each image, preprocess it, ``generate`` once
    per language, decode; images/s and per-image latency. ``exported`` gives the language prompts."""
    import io

    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoTokenizer

    from captioner.modeling import load_model

    torch.set_num_threads(threads)
    model = load_model(checkpoint)
    processor = AutoImageProcessor.from_pretrained(str(checkpoint))
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    config = json.loads((exported / "captioner.json").read_text())
    latencies = []
    started = time.perf_counter()
    with torch.no_grad():
        for data in images:
            sent = time.perf_counter()
            pixels = processor(Image.open(io.BytesIO(data)).convert("RGB"), return_tensors="pt").pixel_values
            for language in LANGUAGES:
                output = model.generate(
                    pixel_values=pixels, decoder_input_ids=torch.tensor([config["prompts"][language]]),
                    max_new_tokens=config["max_new_tokens"], do_sample=False, num_beams=1,
                )
                tokenizer.decode(output[0], skip_special_tokens=True)
            latencies.append(time.perf_counter() - sent)
    return latency_figures(len(images), time.perf_counter() - started, latencies)


def captions_of(settings: TritonSettings, images: list[bytes]) -> list[list[str]]:
    """The English and Korean captions Triton's ``captioner`` gives each image (32 in flight)."""

    async def ask() -> list[list[str]]:
        captioner = TritonCaptioner(settings, "captioner")
        limit = asyncio.Semaphore(32)

        async def one(data: bytes) -> list[str]:
            async with limit:
                return [c.text for c in (await captioner.caption(data, LANGUAGES)).captions]

        try:
            return list(await asyncio.gather(*(one(data) for data in images)))
        finally:
            await captioner.close()

    return asyncio.run(ask())


def in_process_models(images: list[bytes], captions: list[list[str]], nudenet_in_flight: list[int], embed_batch: int = 32) -> dict[str, dict[str, float]]:
    """The models the moderation and indexing services run in their own process, each alone over the
    same images as the services call them: NudeNet per image from a thread pool as moderation runs
    it (at its best number of calls in flight among ``nudenet_in_flight``, recorded as ``in_flight``),
    the caption text checks per image (both languages), the multilingual embedder in batches;
    images/s and per-call latency."""
    from services.indexing.embedder import Embedder
    from services.moderation.image_classifier import NudeNetClassifier
    from services.moderation.text_policy import profanity_scores

    def timed(calls: list, count: int, in_flight: int = 1) -> dict[str, float]:
        latencies = []

        def call_timed(call) -> None:
            sent = time.perf_counter()
            call()
            latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(call_timed, calls))
        return latency_figures(count, time.perf_counter() - started, latencies)

    nudenet, embedder = NudeNetClassifier(), Embedder()
    texts = [english for english, _ in captions]
    nudenet_runs = [
        timed([lambda data=data: nudenet.classify(data) for data in images], len(images), n) | {"in_flight": n} for n in nudenet_in_flight
    ]
    return {
        "nudenet": max(nudenet_runs, key=lambda run: run["images_per_s"]),
        "caption_text_checks": timed([lambda pair=pair: profanity_scores(pair) for pair in captions], len(images)),
        "embedder": timed([lambda chunk=texts[i : i + embed_batch]: embedder.encode(chunk) for i in range(0, len(texts), embed_batch)], len(images)),
    }


def combined_limit(rates: list[float]) -> float:
    """Images/s of running every model once per image on a machine each of them fills alone."""
    return 1 / sum(1 / rate for rate in rates)
