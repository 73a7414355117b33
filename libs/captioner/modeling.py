"""Teacher and student captioners: transformers VisionEncoderDecoder (ViT encoder, GPT-2 decoder).

The encoder is a ViT whose patch embedding is a small convolutional stem instead of one
linear projection per patch ("early convolutions help transformers see better", Xiao et al.
2021): same token grid, same transformer, but shapes are recognised after far fewer steps.
It is registered with the transformers Auto classes as ``vit-conv-stem``; ``load_model``
loads our checkpoints and any standard VisionEncoderDecoder checkpoint alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    GPT2Config,
    PreTrainedTokenizerFast,
    ViTConfig,
    ViTModel,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
)

from captioner.scenes import CANVAS

MAX_CAPTION_TOKENS = 48  # generated tokens after the prompt


@dataclass(frozen=True)
class Architecture:
    """Sizes of one captioner."""

    image_size: int
    patch_size: int
    encoder_hidden: int
    encoder_layers: int
    encoder_heads: int
    decoder_hidden: int
    decoder_layers: int
    decoder_heads: int
    stem_channels: tuple[int, ...] = ()  # empty: the plain linear patch embedding


ARCHITECTURES = {
    "teacher": Architecture(CANVAS, 12, 192, 5, 6, 192, 3, 6, (32, 64, 128)),
    "student": Architecture(CANVAS, 12, 96, 3, 4, 96, 2, 4, (16, 32, 64)),
}


class ConvStemViTConfig(ViTConfig):
    """ViTConfig plus the channels of the convolutional stem."""

    model_type = "vit-conv-stem"

    def __init__(self, stem_channels: list[int] | tuple[int, ...] = (16, 32, 64), **kwargs) -> None:
        super().__init__(**kwargs)
        self.stem_channels = list(stem_channels)


def stem_strides(patch_size: int, layers: int) -> list[int]:
    """Strides of the stem's convolutions: 2, 2, ..., then the rest of ``patch_size``."""
    first = 2 ** (layers - 1)
    if layers < 1 or patch_size % first or patch_size // first < 2:
        raise ValueError(f"a stem of {layers} convolutions cannot reach patch size {patch_size}")
    return [2] * (layers - 1) + [patch_size // first]


class ConvStem(nn.Module):
    """Convolution + BatchNorm + ReLU per stride, then a 1x1 projection to the hidden size."""

    def __init__(self, config: ConvStemViTConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = config.num_channels
        for width, stride in zip(config.stem_channels, stem_strides(config.patch_size, len(config.stem_channels))):
            kernel = 2 * stride - 1
            layers += [nn.Conv2d(channels, width, kernel, stride, stride // 2, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        self.layers = nn.Sequential(*layers)
        self.project = nn.Conv2d(channels, config.hidden_size, 1)

    @property
    def weight(self) -> torch.Tensor:
        """ViTModel reads the input dtype from its patch projection's weight."""
        return self.project.weight

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.project(self.layers(pixel_values))


class ConvStemViTModel(ViTModel):
    """ViTModel with ``ConvStem`` as its patch projection (same token grid as ``patch_size``)."""

    config_class = ConvStemViTConfig

    def __init__(self, config: ConvStemViTConfig, add_pooling_layer: bool = True, use_mask_token: bool = False) -> None:
        super().__init__(config, add_pooling_layer=add_pooling_layer, use_mask_token=use_mask_token)
        self.embeddings.patch_embeddings.projection = ConvStem(config)


AutoConfig.register(ConvStemViTConfig.model_type, ConvStemViTConfig)
AutoModel.register(ConvStemViTConfig, ConvStemViTModel)


def load_model(directory: Path | str) -> VisionEncoderDecoderModel:
    """A VisionEncoderDecoder checkpoint (ours or a standard one) in eval mode."""
    return VisionEncoderDecoderModel.from_pretrained(str(directory)).eval()


def build_model(architecture: Architecture, tokenizer: PreTrainedTokenizerFast) -> VisionEncoderDecoderModel:
    """A randomly initialised captioner whose decoder vocabulary is ``tokenizer``'s."""
    stem = {"stem_channels": architecture.stem_channels} if architecture.stem_channels else {}
    encoder = (ConvStemViTConfig if stem else ViTConfig)(
        **stem,
        image_size=architecture.image_size,
        patch_size=architecture.patch_size,
        hidden_size=architecture.encoder_hidden,
        num_hidden_layers=architecture.encoder_layers,
        num_attention_heads=architecture.encoder_heads,
        intermediate_size=architecture.encoder_hidden * 4,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    decoder = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=MAX_CAPTION_TOKENS + 4,
        n_embd=architecture.decoder_hidden,
        n_layer=architecture.decoder_layers,
        n_head=architecture.decoder_heads,
        add_cross_attention=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.architecture = asdict(architecture)
    return VisionEncoderDecoderModel(config=config)


def parameter_count(model) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())
