"""Captioning with ONNX Runtime: the exported encoder and KV-cached decoder, greedy decoding.

Needs only onnxruntime, tokenizers, numpy and Pillow, so the Triton python backend
can serve it. An exported model directory holds ``encoder.onnx``, ``decoder.onnx``,
``tokenizer.json`` and ``captioner.json`` (see ``captioner.export``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from captioner.generated import Generated, confidence
from captioning_common.onnx import session_options

CONFIG_FILE = "captioner.json"


@dataclass(frozen=True)
class ExportedConfig:
    """What the runtime needs to know about an exported captioner."""

    name: str
    version: str
    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    decoder_layers: int
    decoder_heads: int
    head_dim: int
    eos_token_id: int
    pad_token_id: int
    prompts: dict[str, list[int]]
    max_new_tokens: int

    @classmethod
    def load(cls, directory: Path) -> ExportedConfig:
        data = json.loads((Path(directory) / CONFIG_FILE).read_text())
        data["image_mean"] = tuple(data["image_mean"])
        data["image_std"] = tuple(data["image_std"])
        return cls(**data)


def _softmax_log(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class OnnxCaptioner:
    """Greedy captions from an exported model directory; providers pick CPU, CUDA or TensorRT."""

    def __init__(self, directory: Path, providers: list | None = None, threads: int = 0) -> None:
        directory = Path(directory)
        self.config = ExportedConfig.load(directory)
        options = session_options(threads)
        providers = providers or ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(directory / "encoder.onnx"), options, providers=providers)
        self.decoder = ort.InferenceSession(str(directory / "decoder.onnx"), options, providers=providers)
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.past_names = [f"past_key_values.{i}.{kind}" for i in range(self.config.decoder_layers) for kind in ("key", "value")]

    @property
    def languages(self) -> list[str]:
        """Languages this model can caption in."""
        return sorted(self.config.prompts)

    def preprocess(self, pixels: np.ndarray) -> np.ndarray:
        """float32 encoder input from uint8 [B, 3, H, W] at the model's image size."""
        mean = np.array(self.config.image_mean, dtype=np.float32)[:, None, None]
        std = np.array(self.config.image_std, dtype=np.float32)[:, None, None]
        return ((pixels.astype(np.float32) / 255.0) - mean) / std

    def caption(self, pixels: np.ndarray, languages: list[str]) -> list[Generated]:
        """Greedy captions of uint8 images [B, 3, S, S], one language per image.

        ValueError for a language the model does not support.
        """
        for language in set(languages):
            if language not in self.config.prompts:
                raise ValueError(f"unsupported language {language!r}: this model captions in {', '.join(self.languages)}")
        distinct: dict[bytes, int] = {}  # an image asked for in several languages is encoded once
        first_rows, image_of_row = [], []
        for row, image in enumerate(pixels):
            if (key := image.tobytes()) not in distinct:
                distinct[key] = len(first_rows)
                first_rows.append(row)
            image_of_row.append(distinct[key])
        encoded = self.encoder.run(None, {"pixel_values": self.preprocess(pixels[first_rows])})[0]
        image_of_row = np.array(image_of_row)
        results: list[Generated | None] = [None] * len(languages)
        by_length: dict[int, list[int]] = {}
        for index, language in enumerate(languages):
            by_length.setdefault(len(self.config.prompts[language]), []).append(index)
        for rows in by_length.values():  # rows sharing a prompt length decode together
            prompt = np.array([self.config.prompts[languages[i]] for i in rows], dtype=np.int64)
            for row, generated in zip(rows, self._greedy(encoded[image_of_row[rows]], prompt)):
                results[row] = generated
        return results  # type: ignore[return-value]

    def _greedy(self, encoded: np.ndarray, prompt: np.ndarray) -> list[Generated]:
        config = self.config
        batch = encoded.shape[0]
        past = {name: np.zeros((batch, config.decoder_heads, 0, config.head_dim), np.float32) for name in self.past_names}
        step_input = prompt
        tokens: list[list[int]] = [[] for _ in range(batch)]
        log_probs: list[list[float]] = [[] for _ in range(batch)]
        finished = np.zeros(batch, dtype=bool)
        for _ in range(config.max_new_tokens):
            outputs = self.decoder.run(None, {"input_ids": step_input, "encoder_hidden_states": encoded, **past})
            step_log_probs = _softmax_log(outputs[0][:, -1, :])
            chosen = step_log_probs.argmax(axis=-1)
            for row in np.flatnonzero(~finished):
                log_probs[row].append(float(step_log_probs[row, chosen[row]]))
                if chosen[row] == config.eos_token_id:
                    finished[row] = True
                else:
                    tokens[row].append(int(chosen[row]))
            if finished.all():
                break
            chosen = np.where(finished, config.pad_token_id, chosen)
            past = dict(zip(self.past_names, outputs[1:]))
            step_input = chosen[:, None].astype(np.int64)
        return [
            Generated(self.tokenizer.decode(ids, skip_special_tokens=True).strip(), tuple(ids), confidence(scores))
            for ids, scores in zip(tokens, log_probs)
        ]
