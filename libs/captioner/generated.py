"""A generated caption and its confidence: shared by the PyTorch reference and the ONNX Runtime captioner (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Generated:
    """One caption: text, token ids (without prompt and end), confidence in 0..1."""

    text: str
    token_ids: tuple[int, ...]
    score: float


def confidence(log_probs: list[float]) -> float:
    """exp(mean token log-probability): 1.0 means every token was certain."""
    return float(np.exp(np.mean(log_probs))) if log_probs else 0.0
