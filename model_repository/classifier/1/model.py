"""Triton python-backend model ``classifier``: ImageNet-1k probabilities and pooled features.

Input ``PIXELS`` uint8 [224, 224, 3] RGB (the image's centre square resized, see
``perception.classification.classifier_pixels``); the (x - 127) / 128 scaling happens here.
The valid requests of a dynamic batch run in one ONNX Runtime call; a request with bad
input fails alone with INVALID_ARG.
"""

import numpy as np

from perception.classification import CLASSIFIER_SIZE, scale
from perception.serving import batched_responses, model_session


class TritonPythonModel:
    def initialize(self, args):
        self.session, _ = model_session(args)

    def _run(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        probabilities, features = self.session.run(["probabilities", "features"], {"pixels": scale(pixels)})
        return {"PROBABILITIES": probabilities.astype(np.float32), "FEATURES": features.astype(np.float32)}

    def execute(self, requests):
        return batched_responses(requests, (CLASSIFIER_SIZE, CLASSIFIER_SIZE, 3), "classifier", self._run)
