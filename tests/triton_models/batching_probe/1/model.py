"""Test-only python-backend model (see config.pbtxt)."""

import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(0.05)
        size = sum(pb_utils.get_input_tensor_by_name(r, "DATA").as_numpy().shape[0] for r in requests)
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "DATA").as_numpy()
            lengths = np.array([[len(item[0])] for item in data], dtype=np.int64)
            sizes = np.full((data.shape[0], 1), size, dtype=np.int32)
            responses.append(
                pb_utils.InferenceResponse([pb_utils.Tensor("LENGTH", lengths), pb_utils.Tensor("EXECUTION_SIZE", sizes)])
            )
        return responses
