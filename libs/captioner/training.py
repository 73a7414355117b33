"""Training of the teacher and distillation of the student (soft labels plus ground truth).

When the dataset carries structured scenes (generated data does), a scene-supervision loss
on the encoder's patch tokens is added; see ``captioner.scene_supervision``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerFast, VisionEncoderDecoderModel

from captioner.dataset import Example, load_pixels
from captioner.images import normalise
from captioner.scene_supervision import HEADS, NO_LABEL, SceneProbe, patch_targets
from captioner.tokenizer import encode_target

log = logging.getLogger(__name__)
IGNORE = -100


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 300
    weight_decay: float = 0.01
    seed: int = 0
    # Distillation: loss = alpha * CE(ground truth) + (1 - alpha) * T^2 * KL(teacher || student).
    alpha: float = 0.5
    temperature: float = 2.0
    # Weight of the scene-supervision loss (0 turns it off; unused without scenes).
    scene_weight: float = 1.0


class CaptionBatches:
    """Images in memory and tokenised references; batches of (pixels, decoder inputs, labels)."""

    def __init__(self, examples: list[Example], tokenizer: PreTrainedTokenizerFast, image_size: int, patch_size: int | None = None) -> None:
        self.pixels = load_pixels(examples, image_size)
        self.scenes: np.ndarray | None = None
        if patch_size and any(example.scene for example in examples):
            patches = (image_size // patch_size) ** 2
            self.scenes = np.stack([
                patch_targets(example.scene, image_size, patch_size) if example.scene
                else np.full((len(HEADS), patches), NO_LABEL, dtype=np.int64)
                for example in examples
            ])
        self.targets: list[list[list[int]]] = []
        for example in examples:
            self.targets.append([
                encode_target(tokenizer, text, language)
                for language, texts in sorted(example.captions.items())
                for text in texts
            ])
        self.pad_id = tokenizer.pad_token_id

    def __len__(self) -> int:
        return len(self.pixels)

    def batch(self, indices: list[int], rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One random reference (any language) per image, teacher-forced.

        Inputs drop the last token; labels are the next tokens, with the language
        prompt itself not predicted (it is given at inference).
        """
        chosen = [rng.choice(self.targets[i]) for i in indices]
        length = max(len(t) for t in chosen) - 1
        inputs = torch.full((len(indices), length), self.pad_id, dtype=torch.long)
        labels = torch.full((len(indices), length), IGNORE, dtype=torch.long)
        for row, target in enumerate(chosen):
            inputs[row, : len(target) - 1] = torch.tensor(target[:-1])
            labels[row, 1 : len(target) - 1] = torch.tensor(target[2:])
        pixels = torch.from_numpy(normalise(self.pixels[indices]))
        return pixels, inputs, labels

    def scene_targets(self, indices: list[int]) -> torch.Tensor | None:
        """[B, heads, patches] scene labels of the images, or None when no image has a scene."""
        if self.scenes is None:
            return None
        targets = torch.from_numpy(self.scenes[indices])
        return targets if (targets != NO_LABEL).any() else None


def _forward(model: VisionEncoderDecoderModel, pixels: torch.Tensor, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder logits and the encoder's patch tokens (without the CLS token)."""
    # Padding only trails each row and the decoder is causal, so no mask is needed.
    encoded = model.encoder(pixel_values=pixels)
    logits = model(encoder_outputs=encoded, decoder_input_ids=inputs).logits
    return logits, encoded.last_hidden_state[:, 1:]


def train(
    model: VisionEncoderDecoderModel,
    data: CaptionBatches,
    config: TrainConfig,
    teacher: VisionEncoderDecoderModel | None = None,
) -> dict:
    """Train ``model`` in place (distilling from ``teacher`` when given); returns a summary."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    probe = SceneProbe(model.config.encoder.hidden_size) if config.scene_weight > 0 and data.scenes is not None else None
    parameters = list(model.parameters()) + (list(probe.parameters()) if probe else [])
    optimiser = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress)) * 0.95 + 0.05

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    if teacher is not None:
        teacher.eval()
    model.train()
    started = time.monotonic()
    step = 0
    history = []
    for epoch in range(config.epochs):
        order = list(range(len(data)))
        rng.shuffle(order)
        running, seen = 0.0, 0
        for first in range(0, len(order), config.batch_size):
            indices = order[first : first + config.batch_size]
            pixels, inputs, labels = data.batch(indices, rng)
            logits, patch_tokens = _forward(model, pixels, inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE)
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits, _ = _forward(teacher, pixels, inputs)
                mask = labels != IGNORE
                t = config.temperature
                soft = F.kl_div(
                    F.log_softmax(logits[mask] / t, dim=-1), F.log_softmax(teacher_logits[mask] / t, dim=-1),
                    log_target=True, reduction="batchmean",
                ) * t * t
                loss = config.alpha * loss + (1 - config.alpha) * soft
            scene_targets = data.scene_targets(indices) if probe else None
            if scene_targets is not None:
                loss = loss + config.scene_weight * probe.loss(patch_tokens, scene_targets)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimiser.step()
            scheduler.step()
            step += 1
            running += loss.item() * len(inputs)
            seen += len(inputs)
            if step % 100 == 0:
                elapsed = time.monotonic() - started
                log.info(
                    "step %d/%d epoch %d loss %.4f lr %.2e %.0f samples/s",
                    step, total_steps, epoch, running / seen, scheduler.get_last_lr()[0], step * config.batch_size / elapsed,
                )
        history.append({"epoch": epoch, "loss": running / max(seen, 1), "elapsed_s": round(time.monotonic() - started, 1)})
        log.info("epoch %d done: loss %.4f after %.0fs", epoch, history[-1]["loss"], history[-1]["elapsed_s"])
    model.eval()
    return {"steps": step, "seconds": round(time.monotonic() - started, 1), "history": history}
