"""Training and distillation mechanics on a tiny model (quality is measured by `make eval`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from captioner.cli import main as cli
from captioner.dataset import generate_split, load_coco
from captioner.modeling import Architecture, build_model, parameter_count
from captioner.tokenizer import LANGUAGE_TOKENS, encode_target, language_token_id, prompt_ids, train_tokenizer
from captioner.training import CaptionBatches, TrainConfig, train

TINY = Architecture(96, 24, 32, 1, 2, 32, 1, 2)


def corpus(tmp_path: Path):
    examples = load_coco(generate_split(tmp_path, "train", 64, seed=3, workers=1))
    tokenizer = train_tokenizer(text for e in examples for texts in e.captions.values() for text in texts)
    return examples, tokenizer


def test_tokenizer_keeps_hangul_whole_and_prompts_select_the_language(tmp_path: Path) -> None:
    _, tokenizer = corpus(tmp_path)
    ids = encode_target(tokenizer, "작은 빨간 원 한 개", "ko")
    assert ids[:2] == prompt_ids(tokenizer, "ko") and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids[2:-1]) == "작은 빨간 원 한 개"
    assert {language_token_id(tokenizer, lang) for lang in LANGUAGE_TOKENS} == {ids[1], prompt_ids(tokenizer, "en")[1]}
    try:
        language_token_id(tokenizer, "fr")
    except ValueError as exc:
        assert "unsupported language 'fr'" in str(exc)
    else:
        raise AssertionError("fr must be refused")


def test_training_lowers_the_loss_and_distillation_runs(tmp_path: Path) -> None:
    examples, tokenizer = corpus(tmp_path)
    data = CaptionBatches(examples, tokenizer, 96, patch_size=TINY.patch_size)
    assert data.scenes is not None, "generated data trains with scene supervision"
    pixels, inputs, labels = data.batch([0, 1, 2], __import__("random").Random(0))
    assert pixels.shape == (3, 3, 96, 96) and inputs.shape == labels.shape
    assert (labels[:, 0] == -100).all(), "the language prompt is given, not predicted"

    teacher = build_model(TINY, tokenizer)
    summary = train(teacher, data, TrainConfig(epochs=6, batch_size=16, warmup_steps=5, learning_rate=3e-3))
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < losses[0] * 0.85, losses

    student = build_model(Architecture(96, 24, 16, 1, 2, 16, 1, 2, stem_channels=(8, 8)), tokenizer)
    assert parameter_count(student) < parameter_count(teacher)
    summary = train(student, data, TrainConfig(epochs=2, batch_size=16, warmup_steps=2), teacher=teacher)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in summary["history"])


def test_cli_generate_writes_the_three_splits(tmp_path: Path, capsys) -> None:
    cli(["generate", "--out", str(tmp_path), "--train", "8", "--test", "4", "--novel", "4", "--seed", "1"])
    for split, count in (("train", 8), ("test", 4), ("novel", 4)):
        assert len(json.loads((tmp_path / f"{split}.json").read_text())["images"]) == count
