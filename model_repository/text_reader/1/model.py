"""Triton python-backend model ``text_reader``: the text lines of letterboxed images.

Input ``PIXELS`` uint8 [960, 960, 3] RGB, letterboxed by the caller on grey 114 (see
``perception.detection.letterbox``). Output ``LINES``: one JSON list per image of
``{"text", "score", "box": [x1, y1, x2, y2]}`` in input pixels, in reading order (see
``perception.text_reading``). The images of all requests in a dynamic batch are read
together; when that fails, each request is read alone, so a failing image fails only its
own request.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from captioner.tensorrt import execution_providers
from perception.serving import accepted_pixels, error_response, model_parameters
from perception.tesseract import DEFAULT_DIR
from perception.text_reading import INPUT_SIZE, TextReader


def _lines_response(lines_per_image):
    encoded = [[json.dumps([line.as_json() for line in lines], ensure_ascii=False).encode()]
               for lines in lines_per_image]
    return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("LINES", np.array(encoded, dtype=np.object_))])


class TritonPythonModel:
    def initialize(self, args):
        params, version_dir = model_parameters(args)
        fp16 = params.get("tensorrt_fp16", "0") == "1"
        cache_dir = version_dir / params.get("tensorrt_cache_dir", "trt_cache")
        providers = execution_providers(params.get("providers", "CPUExecutionProvider"), fp16=fp16, cache_dir=cache_dir)
        recognition = params.get("recognition_providers", "")
        recognition_providers = (execution_providers(recognition, fp16=fp16, cache_dir=cache_dir)
                                 if recognition else None)
        tesseract_dir = Path(params["tesseract_dir"]) if params.get("tesseract_dir") else DEFAULT_DIR
        try:
            self.reader = TextReader(version_dir, providers, recognition_providers,
                                     threads=int(params.get("intra_op_threads", "0")), tesseract_dir=tesseract_dir,
                                     detection_batch=int(params.get("detection_batch", "1")))
        except FileNotFoundError as exc:  # its message names `make model-repository`
            raise pb_utils.TritonModelException(str(exc)) from exc

    def execute(self, requests):
        responses, accepted = accepted_pixels(requests, (INPUT_SIZE, INPUT_SIZE, 3))
        if not accepted:
            return responses
        try:
            lines = iter(self.reader.read(np.concatenate([pixels for _, pixels in accepted])))
            for index, pixels in accepted:
                responses[index] = _lines_response([next(lines) for _ in pixels])
        except Exception:  # read alone, each request succeeds or fails on its own
            for index, pixels in accepted:
                try:
                    responses[index] = _lines_response(self.reader.read(pixels))
                except Exception as exc:
                    responses[index] = error_response(f"text_reader failed: {exc}", pb_utils.TritonError.INTERNAL)
        return responses
