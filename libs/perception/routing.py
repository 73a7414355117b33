"""Which world an image belongs to: the generated scenes the trained scene captioner knows, or the real one.

``SceneWorldRouter`` models the classifier's pooled features of generated scenes (coloured
shapes in the photo, illustration and line-art styles) as one Gaussian: their mean and a
Ledoit-Wolf shrunk covariance (1280 dimensions from about a thousand scenes need the
shrinkage). An image is in the scene world when its Mahalanobis distance stays under a
threshold set on held-out scenes: a high quantile of their distances times a margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


def ledoit_wolf_shrinkage(centred: np.ndarray) -> float:
    """Ledoit and Wolf's (2004) optimal weight of the scaled identity in the shrunk covariance."""
    count, dims = centred.shape
    sample = centred.T @ centred / count
    mu = np.trace(sample) / dims
    distance = np.sum((sample - mu * np.eye(dims)) ** 2)
    norms = np.sum(centred**2, axis=1)
    # sum over samples of ||x x^T - S||_F^2, without forming the outer products
    spread = np.sum(norms**2) - 2 * np.sum((centred @ sample) * centred) + count * np.sum(sample**2)
    return float(min(spread / count**2, distance) / distance) if distance > 0 else 1.0


@dataclass(frozen=True)
class SceneWorldRouter:
    """Mean, whitening matrix and distance threshold of the scene world's features."""

    mean: np.ndarray  # [D]
    whitening: np.ndarray  # [D, D]: ||whitening @ (x - mean)|| is the Mahalanobis distance
    threshold: float
    shrinkage: float = 0.0
    quantile: float = 0.0
    margin: float = 1.0
    fitted_on: int = 0

    @classmethod
    def fit(cls, features: np.ndarray, held_out_fraction: float = 0.2, quantile: float = 0.999,
            margin: float = 1.25, seed: int = 0) -> SceneWorldRouter:
        """Fit on features [N, D] of scene images; the threshold comes from a random held-out part."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {features.shape}")
        if not 0 < held_out_fraction < 1 or not 0 < quantile <= 1 or margin < 1:
            raise ValueError("held_out_fraction must be in (0, 1), quantile in (0, 1], margin at least 1")
        order = np.random.default_rng(seed).permutation(len(features))
        held = max(1, round(len(features) * held_out_fraction))
        if len(features) - held < 2:
            raise ValueError(f"{len(features)} scenes are too few to fit and hold out from")
        fitting, held_out = features[order[held:]], features[order[:held]]
        mean = fitting.mean(axis=0)
        centred = fitting - mean
        shrinkage = ledoit_wolf_shrinkage(centred)
        sample = centred.T @ centred / len(centred)
        dims = sample.shape[0]
        covariance = (1 - shrinkage) * sample + shrinkage * np.trace(sample) / dims * np.eye(dims)
        values, vectors = np.linalg.eigh(covariance)
        whitening = (vectors / np.sqrt(np.maximum(values, 1e-12))).T
        distances = np.linalg.norm((held_out - mean) @ whitening.T, axis=1)
        threshold = float(np.quantile(distances, quantile) * margin)
        return cls(mean.astype(np.float32), whitening.astype(np.float32), threshold, shrinkage, quantile, margin, len(fitting))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """float32 [B]: Mahalanobis distance of each feature row [B, D] from the scene world."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.mean.shape[0]:
            raise ValueError(f"features must be [B, {self.mean.shape[0]}], got shape {features.shape}")
        return np.linalg.norm((features - self.mean) @ self.whitening.T, axis=1)

    def is_scene_world(self, features: np.ndarray) -> np.ndarray:
        """bool [B]: True where the image is a generated scene (route it to the scene captioner)."""
        return self.distance(features) <= self.threshold

    def save(self, path: Path) -> None:
        """Write the statistics as an ``.npz`` file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".partial"), "wb") as handle:
            np.savez(handle, format_version=FORMAT_VERSION, mean=self.mean, whitening=self.whitening,
                     threshold=self.threshold, shrinkage=self.shrinkage, quantile=self.quantile,
                     margin=self.margin, fitted_on=self.fitted_on)
        path.with_name(path.name + ".partial").replace(path)

    @classmethod
    def load(cls, path: Path) -> SceneWorldRouter:
        """Read statistics written by ``save``; ValueError when the file is of another format."""
        with np.load(Path(path)) as data:
            version = int(data["format_version"]) if "format_version" in data else None
            if version != FORMAT_VERSION:
                raise ValueError(f"{path} holds router statistics of format {version}, expected {FORMAT_VERSION}")
            return cls(data["mean"], data["whitening"], float(data["threshold"]), float(data["shrinkage"]),
                       float(data["quantile"]), float(data["margin"]), int(data["fitted_on"]))
