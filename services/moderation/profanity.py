"""English profanity probability: alt-profanity-check's model, evaluated with numpy.

``alt-profanity-check`` 1.9.1 (MIT) scores a text with a TF-IDF vectoriser (lower-cased
words of two or more word characters; English stop words are not in its vocabulary; rows
L2-normalised) and five linear SVMs, each calibrated by a sigmoid; the probability is the
mean of the five. ``profanity_model.npz`` holds those parameters, written from the
pinned package by ``python -m services.moderation.profanity export`` (``make
model-repository``, with the ``model`` extra; a builder stage of the services image), not
kept in git. It is loaded once, on first use; the moderation stage loads it when it is
built, so a missing file fails the service's start. Scoring needs only numpy, so the
serving environment installs neither scikit-learn nor scipy.
``tests/unit/test_profanity.py`` checks the scores against the package's own ``predict_prob``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).with_name("profanity_model.npz")
SOURCE = "alt-profanity-check==1.9.1"
MAKE = "make model-repository"  # runs the export below with the `model` extra installed
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # the vectoriser's token_pattern


class ProfanityModel:
    """TF-IDF features and an average of sigmoid-calibrated linear classifiers."""

    def __init__(self, words: Sequence[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 sigmoid_a: np.ndarray, sigmoid_b: np.ndarray) -> None:
        if not (len(words) == idf.shape[0] == coef.shape[1]) or not (coef.shape[0] == intercept.shape[0] == sigmoid_a.shape[0] == sigmoid_b.shape[0]):
            raise ValueError("inconsistent profanity model: vocabulary, idf and classifier shapes differ")
        self.index = {word: column for column, word in enumerate(words)}
        self.idf, self.coef, self.intercept = idf, coef, intercept
        self.sigmoid_a, self.sigmoid_b = sigmoid_a, sigmoid_b

    @classmethod
    def load(cls, path: Path) -> ProfanityModel:
        if not path.is_file():
            raise FileNotFoundError(f"the profanity model {path} is missing: create it with `{MAKE}` "
                                    f"(python -m services.moderation.profanity export, with {SOURCE} installed)")
        with np.load(path) as data:
            return cls([str(word) for word in data["words"]], data["idf"], data["coef"], data["intercept"],
                       data["sigmoid_a"], data["sigmoid_b"])

    def predict_prob(self, texts: Sequence[str]) -> np.ndarray:
        """Probability (0..1) that each text is profane."""
        scores = np.empty(len(texts), dtype=np.float64)
        for row, text in enumerate(texts):
            columns = [self.index[token] for token in _TOKEN.findall(text.lower()) if token in self.index]
            used, counts = np.unique(np.asarray(columns, dtype=np.int64), return_counts=True)
            weights = counts * self.idf[used]
            norm = np.linalg.norm(weights)
            if norm > 0:
                weights = weights / norm
            decision = self.coef[:, used] @ weights + self.intercept
            scores[row] = np.mean(1.0 / (1.0 + np.exp(self.sigmoid_a * decision + self.sigmoid_b)))
        return scores


@cache
def bundled() -> ProfanityModel:
    """The model of ``MODEL_FILE``, loaded once; FileNotFoundError names the command that makes the file."""
    return ProfanityModel.load(MODEL_FILE)


def predict_prob(texts: Sequence[str]) -> np.ndarray:
    """Probability (0..1) that each text is profane, with the bundled model."""
    return bundled().predict_prob(texts)


def export(path: Path = MODEL_FILE) -> None:
    """Write the parameters of the installed alt-profanity-check model to ``path``, checking its structure first."""
    from profanity_check import profanity_check
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    vectorizer, model = profanity_check.vectorizer, profanity_check.model
    expected = {"analyzer": "word", "lowercase": True, "token_pattern": _TOKEN.pattern, "ngram_range": (1, 1),
                "binary": False, "norm": "l2", "use_idf": True, "sublinear_tf": False, "strip_accents": None,
                "preprocessor": None, "tokenizer": None}
    actual = {key: vectorizer.get_params()[key] for key in expected}
    if actual != expected:
        raise ValueError(f"the vectoriser of {SOURCE} changed: {actual} (expected {expected})")
    if model.method != "sigmoid" or list(model.classes_) != [0, 1]:
        raise ValueError(f"{SOURCE}: expected a binary sigmoid-calibrated classifier, got {model.method} {model.classes_}")
    words = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    if ENGLISH_STOP_WORDS & set(words):
        raise ValueError(f"{SOURCE}: stop words in the vocabulary; dropping them would change the features")
    classifiers = model.calibrated_classifiers_
    if any(len(c.calibrators) != 1 or c.estimator.coef_.shape != (1, len(words)) for c in classifiers):
        raise ValueError(f"{SOURCE}: expected one linear classifier over the vocabulary per calibrated fold")
    partial = path.with_name(path.name + ".partial")  # renamed when complete: an interrupted export leaves no model file
    with partial.open("wb") as out:
        np.savez_compressed(
            out,
            words=np.array(words),
            idf=vectorizer.idf_.astype(np.float64),
            coef=np.concatenate([c.estimator.coef_ for c in classifiers]).astype(np.float64),
            intercept=np.concatenate([c.estimator.intercept_ for c in classifiers]).astype(np.float64),
            sigmoid_a=np.array([c.calibrators[0].a_ for c in classifiers], dtype=np.float64),
            sigmoid_b=np.array([c.calibrators[0].b_ for c in classifiers], dtype=np.float64),
        )
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.moderation.profanity", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("export", "check"),
                        help=f"export: write {MODEL_FILE.name} from the installed {SOURCE}; check: load the bundled file")
    parser.add_argument("--out", type=Path, default=MODEL_FILE, help="where export writes")
    args = parser.parse_args(argv)
    if args.command == "check":
        model = bundled()
        print(f"{MODEL_FILE.name}: {len(model.index)} words, {model.coef.shape[0]} classifiers")
        return 0
    export(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) from {SOURCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
