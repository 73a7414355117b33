"""Sending images to the ``captioner`` Triton model, for the tests."""

from __future__ import annotations

import asyncio
import io

import numpy as np
from PIL import Image
from tritonclient.grpc import InferInput, InferRequestedOutput

from captioning_common.settings import TritonSettings
from captioning_common.triton import triton_client
from perception.evaluation import OUTPUTS, decoded_outputs


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


SCENE_OUTPUTS = ("CAPTION", "KEYWORDS", "SCORE")  # what scene_captioner answers


async def caption_concurrently(
    settings: TritonSettings, items: list[tuple[bytes, str]], model: str = "captioner", outputs: tuple[str, ...] = OUTPUTS
) -> list[dict | Exception]:
    """One request per (image bytes, language), all in flight at once; errors are returned, not raised.

    Each answer maps the lower-cased output names to their values (``caption``, ``keywords``, ...).
    """
    client = triton_client(settings, "grpc-aio")

    async def one(data: bytes, language: str):
        image = InferInput("IMAGE", [1, 1], "BYTES")
        image.set_data_from_numpy(np.array([[data]], dtype=np.object_))
        lang = InferInput("LANGUAGE", [1, 1], "BYTES")
        lang.set_data_from_numpy(np.array([[language.encode()]], dtype=np.object_))
        try:
            result = await client.infer(model, [image, lang], outputs=[InferRequestedOutput(name) for name in outputs])
        except Exception as exc:  # the test inspects per-request failures
            return exc
        return decoded_outputs(result, outputs)

    try:
        return await asyncio.gather(*(one(data, language) for data, language in items))
    finally:
        await client.close()


def run(
    settings: TritonSettings, items: list[tuple[bytes, str]], model: str = "captioner", outputs: tuple[str, ...] = OUTPUTS
) -> list[dict | Exception]:
    return asyncio.run(caption_concurrently(settings, items, model, outputs))
