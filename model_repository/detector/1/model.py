"""Triton python-backend model ``detector``: COCO-80 objects (YOLOv3-tiny) after per-class NMS.

Input ``PIXELS`` uint8 [416, 416, 3] RGB, letterboxed by the caller on grey 114 (see
``perception.detection.letterbox``, whose ``Letterbox`` maps boxes back). Output
``DETECTIONS`` [100, 6]: (x1, y1, x2, y2 in input pixels, score, class index), best first,
zero rows after the last detection. Each input is also seen zoomed out (parameter
``zoom_out_factors``) in the same network batch. A request with bad input fails alone
with INVALID_ARG.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from perception.detection import DETECTOR_SIZE, MAX_DETECTIONS, detect
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
        self.score_threshold = float(params.get("score_threshold", "0.25"))
        self.iou_threshold = float(params.get("iou_threshold", "0.45"))
        self.zoom_out = tuple(int(part) for part in params.get("zoom_out_factors", "2").split(",") if part.strip())

    def _run_network(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run(["detections"], {"pixels": inputs})[0]

    def execute(self, requests):
        responses = [None] * len(requests)
        accepted = []
        for index, request in enumerate(requests):
            try:
                pixels = pb_utils.get_input_tensor_by_name(request, "PIXELS").as_numpy()
                accepted.append((index, checked_pixels(pixels, (DETECTOR_SIZE, DETECTOR_SIZE, 3))))
            except ValueError as exc:
                responses[index] = _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        if not accepted:
            return responses
        try:
            detections = detect(self._run_network, np.concatenate([p for _, p in accepted]), self.zoom_out,
                                self.score_threshold, self.iou_threshold, MAX_DETECTIONS)
        except Exception as exc:  # a runtime failure fails every request of the batch, visibly
            for index, _ in accepted:
                responses[index] = _error(f"detector failed: {exc}", pb_utils.TritonError.INTERNAL)
            return responses
        start = 0
        for index, pixels in accepted:
            rows = slice(start, start + len(pixels))
            start = rows.stop
            responses[index] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("DETECTIONS", detections[rows])])
        return responses
