"""Asynchronous calls to Triton's ``captioner`` model over gRPC, one request per image with every language.

Triton's dynamic batcher merges the concurrent requests into batched executions.
A request the model rejects (undecodable image, unsupported language) raises
``CaptionRejected``; anything else (server down, timeout) raises ``TritonUnavailable``,
which the caller treats as transient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from captioning_common.settings import TritonSettings
from captioning_common.triton import triton_client

OUTPUTS = ("CAPTION", "KEYWORDS", "SCORE", "TAGS", "OBJECTS", "TEXT", "ROUTE")
_PERMANENT = ("StatusCode.INVALID_ARGUMENT",)


class CaptionRejected(ValueError):
    """The model refused this input; retrying cannot help."""


class TritonUnavailable(RuntimeError):
    """Triton could not answer now (down, overloaded, timed out); retry later."""


@dataclass(frozen=True)
class LanguageCaption:
    """The model's caption of an image in one language."""

    language: str
    text: str
    keywords: list[str]
    score: float


@dataclass(frozen=True)
class ModelCaption:
    """What the model returned for one image: a caption per language and what it found.

    ``tags``, ``objects`` and ``text_lines`` are the decoded TAGS, OBJECTS and TEXT outputs;
    ``route`` names the captioner that answered.
    """

    captions: list[LanguageCaption]
    tags: list[dict]
    objects: list[dict]
    text_lines: list[dict]
    route: str


class TritonCaptioner:
    """An asyncio gRPC client of one Triton captioning model."""

    def __init__(self, settings: TritonSettings, model_name: str, model_version: str = "") -> None:
        self.settings = settings
        self.model_name = model_name
        self.model_version = model_version
        self._client = triton_client(settings, "grpc-aio")

    async def ready(self) -> bool:
        """Whether the server and the model are ready."""
        try:
            return await self._client.is_server_ready() and await self._client.is_model_ready(self.model_name, self.model_version)
        except InferenceServerException:
            return False

    async def served_version(self) -> str:
        """The model version the server runs (the highest one ready when none is pinned)."""
        if self.model_version:
            return self.model_version
        try:
            metadata = await self._client.get_model_metadata(self.model_name, as_json=True)
        except InferenceServerException as exc:
            raise TritonUnavailable(f"model metadata of {self.model_name}: {exc.message()}") from exc
        return max(metadata.get("versions", ["1"]), key=int)

    async def caption(self, image: bytes, languages: list[str]) -> ModelCaption:
        """Caption one encoded image in each of ``languages`` with one request."""
        image_input = InferInput("IMAGE", [1, 1], "BYTES")
        image_input.set_data_from_numpy(np.array([[image]], dtype=np.object_))
        language_input = InferInput("LANGUAGE", [1, len(languages)], "BYTES")
        language_input.set_data_from_numpy(np.array([[language.encode() for language in languages]], dtype=np.object_))
        try:
            result = await self._client.infer(
                self.model_name,
                [image_input, language_input],
                model_version=self.model_version,
                outputs=[InferRequestedOutput(name) for name in OUTPUTS],
                client_timeout=self.settings.request_timeout_s,
            )
        except InferenceServerException as exc:
            if exc.status() in _PERMANENT:
                raise CaptionRejected(exc.message()) from exc
            raise TritonUnavailable(f"{exc.status()}: {exc.message()}") from exc
        texts, words, scores = (result.as_numpy(name)[0] for name in ("CAPTION", "KEYWORDS", "SCORE"))
        return ModelCaption(
            captions=[
                LanguageCaption(language, text.decode(), json.loads(found), float(score))
                for language, text, found, score in zip(languages, texts, words, scores, strict=True)
            ],
            tags=json.loads(result.as_numpy("TAGS")[0, 0]),
            objects=json.loads(result.as_numpy("OBJECTS")[0, 0]),
            text_lines=json.loads(result.as_numpy("TEXT")[0, 0]),
            route=result.as_numpy("ROUTE")[0, 0].decode(),
        )

    async def close(self) -> None:
        """Close the gRPC channel."""
        await self._client.close()
