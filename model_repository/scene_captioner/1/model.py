"""Triton python-backend model ``scene_captioner``: image bytes + language -> caption, keywords, score.

Requests are decoded one by one, so an image that is corrupt, too large or in an
unsupported format fails only its own request; the valid images of every request in
the dynamic batch are captioned in one ONNX Runtime run. An image asked for in several
languages is decoded and encoded once.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from captioner.images import decode_image
from captioner.keywords import caption_keywords
from captioner.runtime import OnnxCaptioner
from captioner.tensorrt import execution_providers


def _error(message: str):
    try:
        error = pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG)
    except (AttributeError, TypeError):  # older python backends take only a message
        error = pb_utils.TritonError(message)
    return pb_utils.InferenceResponse(output_tensors=[], error=error)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        version_dir = Path(args["model_repository"]) / args["model_version"]
        model_dir = version_dir / params.get("model_dir", "student")
        if not (model_dir / "captioner.json").exists():
            raise pb_utils.TritonModelException(f"no exported captioner in {model_dir}: run `make model-repository`")
        providers = execution_providers(
            params.get("providers", "CPUExecutionProvider"),
            fp16=params.get("tensorrt_fp16", "0") == "1",
            cache_dir=version_dir / params.get("tensorrt_cache_dir", "trt_cache"),
        )
        self.captioner = OnnxCaptioner(model_dir, providers, threads=int(params.get("intra_op_threads", "0")))
        self.max_bytes = int(params.get("max_image_bytes", str(20 * 1024 * 1024)))
        self.max_pixels = int(params.get("max_image_pixels", str(40_000_000)))

    def _decode(self, request, seen: dict[bytes, np.ndarray]):
        """(pixels, languages) of the request's rows; an image already in ``seen`` is not decoded again."""
        images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy().reshape(-1)
        languages = pb_utils.get_input_tensor_by_name(request, "LANGUAGE").as_numpy().reshape(-1)
        if len(images) != len(languages):
            raise ValueError("IMAGE and LANGUAGE must have the same batch size")
        pixels, langs = [], []
        for data, language in zip(images, languages):
            language = language.decode() if isinstance(language, bytes) else str(language)
            if language not in self.captioner.config.prompts:
                raise ValueError(f"unsupported language {language!r}: use one of {', '.join(self.captioner.languages)}")
            if len(data) > self.max_bytes:
                raise ValueError(f"image of {len(data)} bytes exceeds the limit of {self.max_bytes}")
            if len(data) == 0:
                raise ValueError("empty image")
            data = bytes(data)
            if data not in seen:
                seen[data] = decode_image(data, self.captioner.config.image_size, self.max_pixels)
            pixels.append(seen[data])
            langs.append(language)
        return pixels, langs

    def execute(self, requests):
        responses = [None] * len(requests)
        decoded, seen = [], {}
        for index, request in enumerate(requests):
            try:
                pixels, languages = self._decode(request, seen)
                decoded.append((index, pixels, languages))
            except ValueError as exc:
                responses[index] = _error(str(exc))
        if decoded:
            pixels = np.stack([p for _, batch, _ in decoded for p in batch])
            languages = [lang for _, _, batch in decoded for lang in batch]
            captions = iter(self.captioner.caption(pixels, languages))
            for index, batch, langs in decoded:
                results = [next(captions) for _ in batch]
                texts = np.array([[r.text.encode()] for r in results], dtype=np.object_)
                keywords = np.array(
                    [[json.dumps(caption_keywords(r.text, lang), ensure_ascii=False).encode()] for r, lang in zip(results, langs)],
                    dtype=np.object_,
                )
                scores = np.array([[r.score] for r in results], dtype=np.float32)
                responses[index] = pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("CAPTION", texts),
                        pb_utils.Tensor("KEYWORDS", keywords),
                        pb_utils.Tensor("SCORE", scores),
                    ]
                )
        return responses
