"""A BPE tokenizer trained on the caption corpus of every language, with language prompt tokens.

A target sequence is ``<bos> <en> caption <eos>`` or ``<bos> <ko> caption <eos>``: the
language token after ``<bos>`` (the decoder start token) is the prompt that chooses the
language, so one decoder captions in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
LANGUAGE_TOKENS = {"en": "<en>", "ko": "<ko>"}
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, *LANGUAGE_TOKENS.values()]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """Train a BPE tokenizer (Unicode-aware, so Hangul stays whole syllables) on ``texts``."""
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return wrap(tokenizer)


def wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """The transformers wrapper, so the tokenizer saves and loads with a checkpoint."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=list(LANGUAGE_TOKENS.values()),
    )


def language_token_id(tokenizer: PreTrainedTokenizerFast, language: str) -> int:
    """Id of the prompt token that selects ``language``; ValueError for an unsupported one."""
    token = LANGUAGE_TOKENS.get(language)
    if token is None:
        raise ValueError(f"unsupported language {language!r}: use one of {', '.join(LANGUAGE_TOKENS)}")
    return tokenizer.convert_tokens_to_ids(token)


def encode_target(tokenizer: PreTrainedTokenizerFast, caption: str, language: str) -> list[int]:
    """``<bos> <lang> caption <eos>`` as token ids."""
    ids = tokenizer(caption, add_special_tokens=False)["input_ids"]
    return [tokenizer.bos_token_id, language_token_id(tokenizer, language), *ids, tokenizer.eos_token_id]


def prompt_ids(tokenizer: PreTrainedTokenizerFast, language: str) -> list[int]:
    """The decoder prompt that selects ``language``: ``<bos> <lang>``."""
    return [tokenizer.bos_token_id, language_token_id(tokenizer, language)]


def load_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved with ``save_pretrained``."""
    return PreTrainedTokenizerFast.from_pretrained(str(directory))
