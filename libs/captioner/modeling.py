"""Teacher and student captioners: transformers VisionEncoderDecoder (ViT encoder, GPT-2 decoder)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from transformers import GPT2Config, PreTrainedTokenizerFast, ViTConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel

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


ARCHITECTURES = {
    "teacher": Architecture(CANVAS, 12, 192, 5, 6, 192, 3, 6),
    "student": Architecture(CANVAS, 12, 96, 3, 4, 96, 2, 4),
}


def build_model(architecture: Architecture, tokenizer: PreTrainedTokenizerFast) -> VisionEncoderDecoderModel:
    """A randomly initialised captioner whose decoder vocabulary is ``tokenizer``'s."""
    encoder = ViTConfig(
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
