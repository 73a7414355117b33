"""Export a VisionEncoderDecoder checkpoint (ours or any ViT/GPT-2-style one on disk) to ONNX.

Writes ``encoder.onnx`` (pixel_values -> encoder states) and ``decoder.onnx`` (one graph
for the prompt step and every cached step: input_ids, encoder states and past
self-attention keys/values -> logits and present keys/values), the tokenizer and
``captioner.json``. ``quantize_int8`` derives an ONNX Runtime INT8 variant.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from transformers import AutoTokenizer, VisionEncoderDecoderModel
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from captioner.modeling import MAX_CAPTION_TOKENS, load_model
from captioner.runtime import CONFIG_FILE
from captioner.tokenizer import LANGUAGE_TOKENS

OPSET = 18


class _Encoder(torch.nn.Module):
    def __init__(self, model: VisionEncoderDecoderModel) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.projection = getattr(model, "enc_to_dec_proj", None)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        states = self.encoder(pixel_values=pixel_values).last_hidden_state
        return self.projection(states) if self.projection is not None else states


class _Decoder(torch.nn.Module):
    """Flat tensors in and out around the decoder's self-attention cache."""

    def __init__(self, model: VisionEncoderDecoderModel) -> None:
        super().__init__()
        self.decoder = model.decoder
        self.layers = model.config.decoder.n_layer

    def forward(self, input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor, *past: torch.Tensor):
        cache = DynamicCache()
        for layer in range(self.layers):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        output = self.decoder(
            input_ids=input_ids,
            encoder_hidden_states=encoder_hidden_states,
            past_key_values=EncoderDecoderCache(cache, DynamicCache()),
            use_cache=True,
        )
        present = output.past_key_values.self_attention_cache
        flat = []
        for layer in range(self.layers):
            flat += [present.layers[layer].keys, present.layers[layer].values]
        return (output.logits, *flat)


def _prompts(tokenizer, model: VisionEncoderDecoderModel, default_language: str) -> dict[str, list[int]]:
    vocabulary = tokenizer.get_vocab()
    start = model.config.decoder_start_token_id
    if start is None:
        start = model.config.decoder.bos_token_id
    ours = {language: [start, vocabulary[token]] for language, token in LANGUAGE_TOKENS.items() if token in vocabulary}
    return ours or {default_language: [start]}


def _image_stats(checkpoint: Path, model: VisionEncoderDecoderModel) -> tuple[int, list[float], list[float]]:
    processor = checkpoint / "preprocessor_config.json"
    size = model.config.encoder.image_size
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    if processor.exists():
        data = json.loads(processor.read_text())
        mean, std = data.get("image_mean", mean), data.get("image_std", std)
    return size, mean, std


def export_onnx(checkpoint: Path, out: Path, name: str | None = None, default_language: str = "en") -> Path:
    """Export ``checkpoint`` into ``out``; returns ``out``."""
    checkpoint, out = Path(checkpoint), Path(out)
    model = load_model(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    decoder_config = model.config.decoder
    layers, heads = decoder_config.n_layer, decoder_config.n_head
    head_dim = decoder_config.n_embd // heads
    size, mean, std = _image_stats(checkpoint, model)
    out.mkdir(parents=True, exist_ok=True)

    batch = torch.export.Dim("batch", min=1, max=1024)
    sequence = torch.export.Dim("sequence", min=1, max=decoder_config.n_positions)
    past_sequence = torch.export.Dim("past_sequence", min=0, max=decoder_config.n_positions)
    pixels = torch.rand(2, 3, size, size)
    encoder = _Encoder(model).eval()
    with torch.no_grad():
        states = encoder(pixels)
    program = torch.onnx.export(
        encoder, (pixels,), dynamo=True, opset_version=OPSET,
        input_names=["pixel_values"], output_names=["last_hidden_state"],
        dynamic_shapes={"pixel_values": {0: batch}},
    )
    program.save(str(out / "encoder.onnx"))

    past_names = [f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    present_names = [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    ids = torch.randint(0, decoder_config.vocab_size, (2, 2))
    past = tuple(torch.randn(2, heads, 3, head_dim) for _ in range(2 * layers))
    program = torch.onnx.export(
        _Decoder(model).eval(), (ids, states, *past), dynamo=True, opset_version=OPSET,
        input_names=["input_ids", "encoder_hidden_states", *past_names], output_names=["logits", *present_names],
        dynamic_shapes=({0: batch, 1: sequence}, {0: batch}, tuple({0: batch, 2: past_sequence} for _ in past)),
    )
    program.save(str(out / "decoder.onnx"))

    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    weights = checkpoint / "model.safetensors"
    version = hashlib.sha256(weights.read_bytes()).hexdigest()[:12] if weights.exists() else "unversioned"
    config = {
        "name": name or checkpoint.name,
        "version": version,
        "image_size": size,
        "image_mean": mean,
        "image_std": std,
        "decoder_layers": layers,
        "decoder_heads": heads,
        "head_dim": head_dim,
        "eos_token_id": model.config.eos_token_id if model.config.eos_token_id is not None else decoder_config.eos_token_id,
        "pad_token_id": model.config.pad_token_id if model.config.pad_token_id is not None else decoder_config.eos_token_id,
        "prompts": _prompts(tokenizer, model, default_language),
        "max_new_tokens": min(MAX_CAPTION_TOKENS, decoder_config.n_positions - 4),
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return out


def quantize_int8(source: Path, out: Path) -> Path:
    """ONNX Runtime dynamic INT8 quantisation (weights int8, activations quantised at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for graph in ("encoder.onnx", "decoder.onnx"):
        prepared = out / f"{graph}.prep"
        quant_pre_process(str(source / graph), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(out / graph), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        prepared.unlink()
    for extra in ("tokenizer.json", CONFIG_FILE):
        shutil.copy2(source / extra, out / extra)
    config = json.loads((out / CONFIG_FILE).read_text())
    config["version"] += "-int8"
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return out
