"""Triton python-backend model ``detector``: COCO-80 objects (YOLOv3-tiny) after per-class NMS.

Input ``PIXELS`` uint8 [416, 416, 3] RGB, letterboxed by the caller on grey 114 (see
``perception.detection.letterbox``, whose ``Letterbox`` maps boxes back). Output
``DETECTIONS`` [100, 6]: (x1, y1, x2, y2 in input pixels, score, class index), best first,
zero rows after the last detection. Each input is also seen zoomed out (parameter
``zoom_out_factors``) in the same network batch. A request with bad input fails alone
with INVALID_ARG.
"""

import numpy as np

from perception.detection import DETECTOR_SIZE, MAX_DETECTIONS, detect
from perception.serving import batched_responses, model_session


class TritonPythonModel:
    def initialize(self, args):
        self.session, params = model_session(args)
        self.score_threshold = float(params.get("score_threshold", "0.25"))
        self.iou_threshold = float(params.get("iou_threshold", "0.45"))
        self.zoom_out = tuple(int(part) for part in params.get("zoom_out_factors", "2").split(",") if part.strip())

    def _run_network(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run(["detections"], {"pixels": inputs})[0]

    def _run(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        detections = detect(self._run_network, pixels, self.zoom_out, self.score_threshold, self.iou_threshold, MAX_DETECTIONS)
        return {"DETECTIONS": detections}

    def execute(self, requests):
        return batched_responses(requests, (DETECTOR_SIZE, DETECTOR_SIZE, 3), "detector", self._run)
