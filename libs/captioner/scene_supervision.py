"""Scene supervision: per-patch object labels that teach the encoder what each patch shows.

Generated images come with their structured scene, so training can tell the encoder, for
every patch, the colour, shape and size of the object covering it and whether an object's
centre lies in it. A linear probe on the encoder's patch tokens predicts these labels; its
loss is added to the caption loss. The probe exists only during training: exported and
served models are the plain VisionEncoderDecoder.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from captioner.render import object_mask
from captioner.scenes import Scene
from captioner.vocabulary import COLOURS, SHAPES, SIZES

# One head per attribute; class 0 of each is "no object".
HEADS = {"colour": COLOURS, "shape": SHAPES, "size": SIZES, "centre": ("yes",)}
COVERED = 0.2  # share of a patch an object must cover to label it
NO_LABEL = -100


def patch_targets(scene: Scene, image_size: int, patch_size: int) -> np.ndarray:
    """int64 [len(HEADS), patches]: class per head and patch (row-major patch order)."""
    mask = object_mask(scene)
    scale = image_size / scene.width
    if mask.shape != (image_size, image_size):
        mask = np.asarray(Image.fromarray(mask).resize((image_size, image_size), Image.NEAREST))
    grid = image_size // patch_size
    patches = mask[: grid * patch_size, : grid * patch_size].reshape(grid, patch_size, grid, patch_size).transpose(0, 2, 1, 3)
    patches = patches.reshape(grid * grid, patch_size * patch_size)
    owner = np.zeros(grid * grid, dtype=np.int64)  # 1 + object index, 0 = background
    for patch, pixels in enumerate(patches):
        counts = np.bincount(pixels, minlength=len(scene.objects) + 1)
        counts[0] = 0
        if counts.max() >= COVERED * pixels.size:
            owner[patch] = int(counts.argmax())
    centres = np.zeros(grid * grid, dtype=np.int64)
    for index, obj in enumerate(scene.objects, start=1):
        row = min(int(obj.y * scale) // patch_size, grid - 1)
        col = min(int(obj.x * scale) // patch_size, grid - 1)
        owner[row * grid + col] = index  # a small object always labels the patch of its centre
        centres[row * grid + col] = 1
    targets = np.zeros((len(HEADS), grid * grid), dtype=np.int64)
    for patch, index in enumerate(owner):
        if index:
            obj = scene.objects[index - 1]
            targets[0, patch] = 1 + COLOURS.index(obj.colour)
            targets[1, patch] = 1 + SHAPES.index(obj.shape)
            targets[2, patch] = 1 + SIZES.index(obj.size)
    targets[3] = centres
    return targets


class SceneProbe(nn.Module):
    """Linear heads from the encoder's patch tokens to the per-patch scene labels."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(hidden_size, 1 + len(classes)) for classes in HEADS.values())

    def loss(self, patch_tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over heads; ``targets`` [B, heads, patches] (NO_LABEL rows are skipped)."""
        losses = []
        for head, (layer, labels) in enumerate(zip(self.heads, targets.unbind(1))):
            logits = layer(patch_tokens)
            losses.append(F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=NO_LABEL))
        return torch.stack(losses).mean()
