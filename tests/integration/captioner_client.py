"""Sending images to the ``captioner`` Triton model, for the tests."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
from PIL import Image
from tritonclient.grpc import InferInput, InferRequestedOutput

from captioning_common.settings import TritonSettings
from captioning_common.triton import triton_client


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def caption_concurrently(settings: TritonSettings, items: list[tuple[bytes, str]]) -> list[dict | Exception]:
    """One request per (image bytes, language), all in flight at once; errors are returned, not raised."""
    client = triton_client(settings, "grpc-aio")

    async def one(data: bytes, language: str):
        image = InferInput("IMAGE", [1, 1], "BYTES")
        image.set_data_from_numpy(np.array([[data]], dtype=np.object_))
        lang = InferInput("LANGUAGE", [1, 1], "BYTES")
        lang.set_data_from_numpy(np.array([[language.encode()]], dtype=np.object_))
        outputs = [InferRequestedOutput(name) for name in ("CAPTION", "KEYWORDS", "SCORE")]
        try:
            result = await client.infer("captioner", [image, lang], outputs=outputs)
        except Exception as exc:  # the test inspects per-request failures
            return exc
        return {
            "caption": result.as_numpy("CAPTION")[0, 0].decode(),
            "keywords": json.loads(result.as_numpy("KEYWORDS")[0, 0]),
            "score": float(result.as_numpy("SCORE")[0, 0]),
        }

    try:
        return await asyncio.gather(*(one(data, language) for data, language in items))
    finally:
        await client.close()


def run(settings: TritonSettings, items: list[tuple[bytes, str]]) -> list[dict | Exception]:
    return asyncio.run(caption_concurrently(settings, items))
