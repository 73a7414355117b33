"""Triton python-backend model ``classifier``: ImageNet-1k probabilities and pooled features.

Input ``PIXELS`` uint8 [224, 224, 3] RGB (the whole image resized, see
``perception.classification.classifier_pixels``); the (x - 127) / 128 scaling happens here.
The valid requests of a dynamic batch run in one ONNX Runtime call; a request with bad
input fails alone with INVALID_ARG.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from perception.classification import CLASSIFIER_SIZE, scale
from perception.serving import checked_pixels, onnx_session


def _error(message: str, code):
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        try:
            self.session = onnx_session(Path(args["model_repository"]) / args["model_version"], params)
        except FileNotFoundError as exc:
            raise pb_utils.TritonModelException(str(exc)) from exc

    def execute(self, requests):
        responses = [None] * len(requests)
        accepted = []
        for index, request in enumerate(requests):
            try:
                pixels = pb_utils.get_input_tensor_by_name(request, "PIXELS").as_numpy()
                accepted.append((index, checked_pixels(pixels, (CLASSIFIER_SIZE, CLASSIFIER_SIZE, 3))))
            except ValueError as exc:
                responses[index] = _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        if not accepted:
            return responses
        try:
            probabilities, features = self.session.run(["probabilities", "features"], {"pixels": scale(np.concatenate([p for _, p in accepted]))})
        except Exception as exc:  # a runtime failure fails every request of the batch, visibly
            for index, _ in accepted:
                responses[index] = _error(f"classifier failed: {exc}", pb_utils.TritonError.INTERNAL)
            return responses
        start = 0
        for index, pixels in accepted:
            rows = slice(start, start + len(pixels))
            start = rows.stop
            responses[index] = pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("PROBABILITIES", probabilities[rows].astype(np.float32)),
                pb_utils.Tensor("FEATURES", features[rows].astype(np.float32)),
            ])
        return responses
