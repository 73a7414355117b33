"""Builds a tiny, randomly initialised Hugging Face image-captioning checkpoint (ViT + GPT-2).

It has the layout of any VisionEncoderDecoder checkpoint on the Hub: config.json,
model.safetensors, a byte-level GPT-2 tokenizer and a ViT image processor with
ImageNet statistics, so the code that loads, exports and serves it is the code a user's
own checkpoint goes through.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2TokenizerFast,
    ViTConfig,
    ViTImageProcessor,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
)

END = "<|endoftext|>"
CORPUS = [
    "a man riding a horse on the beach", "two dogs playing in the snow", "a bowl of fruit on a wooden table",
    "a red bus driving down a city street", "a child flying a kite in a park", "a cat sleeping on a sofa",
]


def build_tiny_checkpoint(directory: Path, seed: int = 0) -> Path:
    """Write the checkpoint into ``directory``; returns it."""
    torch.manual_seed(seed)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 20, trainers.BpeTrainer(vocab_size=300, special_tokens=[END], show_progress=False))
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe, bos_token=END, eos_token=END, unk_token=END, pad_token=END)
    end_id = tokenizer.convert_tokens_to_ids(END)
    encoder = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    decoder = GPT2Config(
        vocab_size=len(tokenizer), n_positions=40, n_embd=48, n_layer=2, n_head=2, add_cross_attention=True,
        bos_token_id=end_id, eos_token_id=end_id, initializer_range=0.3,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = end_id
    config.pad_token_id = end_id
    config.eos_token_id = end_id
    model = VisionEncoderDecoderModel(config=config).eval()  # encoder 32 wide, decoder 48: has enc_to_dec_proj
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    ).save_pretrained(directory)
    return directory
