"""Scene supervision labels the right patches, and the conv-stem encoder saves and loads like any checkpoint."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from captioner.dataset import generate_split, load_coco
from captioner.modeling import ConvStemViTModel, build_model, load_model, stem_strides
from captioner.scene_supervision import HEADS, SceneProbe, patch_targets
from captioner.scenes import Scene, SceneObject
from captioner.tokenizer import train_tokenizer
from captioner.training import CaptionBatches
from captioner.vocabulary import COLOURS, SHAPES, SIZES
from tests.captioner.test_training import TINY

SCENE = Scene(
    style="lineart",
    background="gray",
    objects=(
        SceneObject("square", "red", "large", x=30.0, y=30.0, radius=15.0),
        SceneObject("circle", "blue", "small", x=78.0, y=78.0, radius=7.0),
    ),
)


def test_patch_targets_label_covered_patches_and_centres() -> None:
    targets = patch_targets(SCENE, image_size=96, patch_size=12).reshape(len(HEADS), 8, 8)
    colour, shape, size, centre = targets
    # The large square spans pixels 17..43: patches 1..3 in both directions.
    assert (colour[1:4, 1:4] == 1 + COLOURS.index("red")).all()
    assert (shape[1:4, 1:4] == 1 + SHAPES.index("square")).all()
    assert (size[1:4, 1:4] == 1 + SIZES.index("large")).all()
    # The small circle's centre (78, 78) lies in patch (6, 6).
    assert colour[6, 6] == 1 + COLOURS.index("blue") and shape[6, 6] == 1 + SHAPES.index("circle")
    assert centre.sum() == 2 and centre[2, 2] == 1 and centre[6, 6] == 1
    assert colour[0, 7] == 0 and colour[7, 0] == 0, "background patches are class 0"


def test_patch_targets_follow_a_resized_canvas() -> None:
    targets = patch_targets(SCENE, image_size=48, patch_size=12).reshape(len(HEADS), 4, 4)
    assert targets[3].sum() == 2 and targets[3, 1, 1] == 1 and targets[3, 3, 3] == 1


def test_batches_carry_scene_targets_only_for_datasets_with_scenes(tmp_path: Path) -> None:
    path = generate_split(tmp_path, "train", 8, seed=5, workers=1)
    examples = load_coco(path)
    tokenizer = train_tokenizer(text for e in examples for texts in e.captions.values() for text in texts)
    targets = CaptionBatches(examples, tokenizer, 96, patch_size=24).scene_targets([0, 1, 2])
    assert targets.shape == (3, len(HEADS), 16) and (targets[:, 3].sum(dim=1) >= 1).all()

    plain = json.loads(path.read_text())
    for image in plain["images"]:
        del image["scene"]  # a user's COCO dataset: captions only
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    assert CaptionBatches(load_coco(tmp_path / "plain.json"), tokenizer, 96, patch_size=24).scene_targets([0, 1]) is None


def test_scene_probe_learns_the_labels() -> None:
    torch.manual_seed(0)
    probe = SceneProbe(hidden_size=len(COLOURS) + 1)
    tokens = torch.nn.functional.one_hot(torch.randint(0, len(COLOURS) + 1, (4, 16)), len(COLOURS) + 1).float()
    targets = torch.stack([tokens.argmax(-1)] * 3 + [torch.zeros(4, 16, dtype=torch.long)], dim=1)
    targets[:, 1:3] = targets[:, 1:3].clamp(max=2)
    optimiser = torch.optim.Adam(probe.parameters(), lr=0.1)
    first = probe.loss(tokens, targets).item()
    for _ in range(100):
        optimiser.zero_grad()
        loss = probe.loss(tokens, targets)
        loss.backward()
        optimiser.step()
    assert loss.item() < first * 0.2


def test_stem_strides_reach_the_patch_size() -> None:
    assert stem_strides(12, 3) == [2, 2, 3] and stem_strides(16, 3) == [2, 2, 4]
    with pytest.raises(ValueError, match="cannot reach patch size 10"):
        stem_strides(10, 3)


def test_conv_stem_encoder_keeps_the_token_grid_and_round_trips(tmp_path: Path) -> None:
    tokenizer = train_tokenizer(["a small red circle", "작은 빨간 원 한 개"])
    model = build_model(replace(TINY, stem_channels=(8, 8)), tokenizer).eval()
    assert isinstance(model.encoder, ConvStemViTModel)
    pixels = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3, 96, 96)).astype(np.float32))
    states = model.encoder(pixel_values=pixels).last_hidden_state
    assert states.shape == (2, 1 + (96 // TINY.patch_size) ** 2, TINY.encoder_hidden)
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.config.encoder.model_type == "vit-conv-stem" and not loaded.training
    assert torch.allclose(loaded.encoder(pixel_values=pixels).last_hidden_state, states, atol=1e-6)
