"""Which world an image belongs to: the generated scenes the trained scene captioner knows, or the real one.

``SceneWorldRouter`` asks two questions of the classifier's pooled features, and an image
is in the scene world only when both answers are yes:

- Is it like the scenes? ``SceneGaussian`` models the features of generated scenes
  (coloured shapes in the photo, illustration and line-art styles) as one Gaussian: their
  mean and a Ledoit-Wolf shrunk covariance (1280 dimensions from about a thousand scenes
  need the shrinkage). A feature passes when its Mahalanobis distance stays under a
  threshold set on held-out scenes: a high quantile of their distances times a margin.
- Is it more like the scenes than like anything else? ``SceneOdds`` is a logistic
  regression on standardised features, scenes against images that are not scenes (text,
  documents, screens, plain colours, gradients, noise, photos). The Gaussian alone lets
  simple graphics in: a page of text lies nearer the scenes' mean than many scenes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 2


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


def _rows(features: np.ndarray, dims: int | None = None, dtype=np.float32) -> np.ndarray:
    features = np.asarray(features, dtype=dtype)
    if features.ndim != 2 or (dims is not None and features.shape[1] != dims):
        raise ValueError(f"features must be [B, {dims or 'D'}], got shape {features.shape}")
    return features


def _split(count: int, held_out_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fitting, held-out) row indices of a random split."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    order = np.random.default_rng(seed).permutation(count)
    held = max(1, round(count * held_out_fraction))
    if count - held < 2:
        raise ValueError(f"{count} samples are too few to fit and hold out from")
    return order[held:], order[:held]


@dataclass(frozen=True)
class SceneGaussian:
    """Mean, whitening matrix and distance threshold of the scene world's features."""

    mean: np.ndarray  # [D]
    whitening: np.ndarray  # [D, D]: ||whitening @ (x - mean)|| is the Mahalanobis distance
    threshold: float
    shrinkage: float = 0.0
    quantile: float = 0.0
    margin: float = 1.0

    @classmethod
    def fit(cls, fitting: np.ndarray, held_out: np.ndarray, quantile: float = 0.999, margin: float = 1.25) -> SceneGaussian:
        """Mean and covariance from the ``fitting`` scenes [N, D]; threshold from the ``held_out`` ones."""
        if not 0 < quantile <= 1 or margin < 1:
            raise ValueError("quantile must be in (0, 1] and margin at least 1")
        fitting, held_out = _rows(fitting, dtype=np.float64), _rows(held_out, fitting.shape[1], np.float64)
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
        return cls(mean.astype(np.float32), whitening.astype(np.float32), threshold, shrinkage, quantile, margin)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """float32 [B]: Mahalanobis distance of each feature row [B, D] from the scenes."""
        return np.linalg.norm((_rows(features, self.mean.shape[0]) - self.mean) @ self.whitening.T, axis=1)

    def accepts(self, features: np.ndarray) -> np.ndarray:
        return self.distance(features) <= self.threshold


# The log-odds above which an image counts as a scene: below even odds, because the errors
# cost differently. A sparse scene (one small line-art star on a plain background) scores
# -3.0 and loses its caption when misrouted; the non-scenes inside the scene Gaussian
# (signs and documents, plain colours) score -4.7 and lower, and would get invented shapes.
MIN_LOG_ODDS = -4.0


@dataclass(frozen=True)
class SceneOdds:
    """Logistic regression of scene against other image on standardised features."""

    centre: np.ndarray  # [D]
    scale: np.ndarray  # [D]
    weights: np.ndarray  # [D]
    bias: float

    @classmethod
    def fit(cls, scenes: np.ndarray, others: np.ndarray, l2: float = 1.0) -> SceneOdds:
        """Fit on features [N, D] of ``scenes`` and ``others``, the two classes weighing the same.

        With equal weights, a log-odds of zero is where an image is as much a scene as not.
        """
        scenes, others = _rows(scenes, dtype=np.float64), _rows(others, scenes.shape[1], np.float64)
        if l2 <= 0:
            raise ValueError(f"l2 must be positive (separable classes have no finite fit without it), got {l2}")
        features = np.concatenate([scenes, others])
        labels = np.concatenate([np.ones(len(scenes)), np.zeros(len(others))])
        sample_weights = np.where(labels == 1, len(features) / (2 * len(scenes)), len(features) / (2 * len(others)))
        centre, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
        weights, bias = _logistic_regression((features - centre) / scale, labels, sample_weights, l2)
        return cls(centre.astype(np.float32), scale.astype(np.float32), weights.astype(np.float32), bias)

    def log_odds(self, features: np.ndarray) -> np.ndarray:
        """float32 [B]: log-odds that each feature row [B, D] is a scene."""
        return ((_rows(features, self.centre.shape[0]) - self.centre) / self.scale) @ self.weights + np.float32(self.bias)

    def accepts(self, features: np.ndarray) -> np.ndarray:
        return self.log_odds(features) >= MIN_LOG_ODDS


def _logistic_regression(x: np.ndarray, labels: np.ndarray, sample_weights: np.ndarray, l2: float,
                         max_iterations: int = 50) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the weighted log-loss plus ``l2`` / 2 ||weights||^2, by Newton's method."""
    design = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    coefficients = np.zeros(design.shape[1])
    for _ in range(max_iterations):
        probabilities = 1 / (1 + np.exp(-np.clip(design @ coefficients, -30, 30)))
        gradient = design.T @ (sample_weights * (probabilities - labels)) + penalty * coefficients
        curvature = sample_weights * probabilities * (1 - probabilities)
        hessian = (design * curvature[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        coefficients -= step
        if np.max(np.abs(step)) < 1e-6:
            return coefficients[:-1], float(coefficients[-1])
    raise ValueError(f"the logistic regression did not converge in {max_iterations} Newton steps")


@dataclass(frozen=True)
class SceneWorldRouter:
    """The two tests; an image is in the scene world when it passes both."""

    gaussian: SceneGaussian
    odds: SceneOdds
    fitted_on: tuple[int, int] = (0, 0)  # scenes and other images the tests were fitted on

    @classmethod
    def fit(cls, scenes: np.ndarray, others: np.ndarray, held_out_fraction: float = 0.2, seed: int = 0,
            quantile: float = 0.999, margin: float = 1.25, l2: float = 1.0) -> SceneWorldRouter:
        """Fit on features [N, D] of scenes and of other images.

        The Gaussian's threshold comes from a random ``held_out_fraction`` of the scenes, held
        out of its mean and covariance; the logistic regression learns from all the images.
        """
        scenes = _rows(scenes, dtype=np.float64)
        others = _rows(others, scenes.shape[1], np.float64)
        fitting, held_out = _split(len(scenes), held_out_fraction, seed)
        gaussian = SceneGaussian.fit(scenes[fitting], scenes[held_out], quantile, margin)
        return cls(gaussian, SceneOdds.fit(scenes, others, l2), (len(scenes), len(others)))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """float32 [B]: Mahalanobis distance of each feature row [B, D] from the scenes."""
        return self.gaussian.distance(features)

    def log_odds(self, features: np.ndarray) -> np.ndarray:
        """float32 [B]: log-odds that each feature row [B, D] is a scene rather than another image."""
        return self.odds.log_odds(features)

    def is_scene_world(self, features: np.ndarray) -> np.ndarray:
        """bool [B]: True where the image is a generated scene (route it to the scene captioner)."""
        return self.gaussian.accepts(features) & self.odds.accepts(features)

    def save(self, path: Path) -> None:
        """Write both tests as an ``.npz`` file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        g, o = self.gaussian, self.odds
        with open(partial, "wb") as handle:
            np.savez(handle, format_version=FORMAT_VERSION, fitted_on=np.array(self.fitted_on),
                     mean=g.mean, whitening=g.whitening, threshold=g.threshold, shrinkage=g.shrinkage,
                     quantile=g.quantile, margin=g.margin, odds_centre=o.centre, odds_scale=o.scale,
                     odds_weights=o.weights, odds_bias=o.bias)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> SceneWorldRouter:
        """Read a router written by ``save``; ValueError when the file is of another format."""
        with np.load(Path(path)) as data:
            version = int(data["format_version"]) if "format_version" in data else None
            if version != FORMAT_VERSION:
                raise ValueError(f"{path} holds a router of format {version}, expected {FORMAT_VERSION}: prepare it again")
            gaussian = SceneGaussian(data["mean"], data["whitening"], float(data["threshold"]), float(data["shrinkage"]),
                                     float(data["quantile"]), float(data["margin"]))
            odds = SceneOdds(data["odds_centre"], data["odds_scale"], data["odds_weights"], float(data["odds_bias"]))
            return cls(gaussian, odds, tuple(int(count) for count in data["fitted_on"]))
