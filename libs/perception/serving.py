"""What the classifier, detector and text reader Triton models share: parameters, sessions, request handling.

The request helpers import Triton's ``triton_python_backend_utils`` when called, so this
module also loads outside Triton.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from captioner.tensorrt import execution_providers
from captioning_common.onnx import session_options


def onnx_session(version_dir: Path, params: dict[str, str]) -> ort.InferenceSession:
    """The session of ``params["model_file"]`` in ``version_dir`` with the configured providers and threads.

    FileNotFoundError naming ``make model-repository`` when the prepared file is missing.
    """
    model = version_dir / params.get("model_file", "model.onnx")
    if not model.exists():
        raise FileNotFoundError(f"{model} is missing: run `make model-repository` (python -m perception prepare)")
    providers = execution_providers(
        params.get("providers", "CPUExecutionProvider"),
        fp16=params.get("tensorrt_fp16", "0") == "1",
        cache_dir=version_dir / params.get("tensorrt_cache_dir", "trt_cache"),
    )
    return ort.InferenceSession(str(model), session_options(int(params.get("intra_op_threads", "0"))), providers=providers)


def checked_pixels(pixels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``pixels`` as uint8 [B, *shape]; ValueError naming what is wrong otherwise."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"PIXELS must be UINT8, got {pixels.dtype}")
    if pixels.ndim != len(shape) + 1 or pixels.shape[1:] != tuple(shape) or pixels.shape[0] == 0:
        raise ValueError(f"PIXELS must be [B, {', '.join(map(str, shape))}], got {list(pixels.shape)}")
    return pixels


def model_parameters(args: dict) -> tuple[dict[str, str], Path]:
    """The string parameters of a Triton model's config and its version directory, from ``initialize``'s args."""
    config = json.loads(args["model_config"])
    params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
    return params, Path(args["model_repository"]) / args["model_version"]


def model_session(args: dict) -> tuple[ort.InferenceSession, dict[str, str]]:
    """The ONNX Runtime session and parameters of a Triton model, from ``initialize``'s args.

    TritonModelException naming ``make model-repository`` when the prepared file is missing.
    """
    import triton_python_backend_utils as pb_utils

    params, version_dir = model_parameters(args)
    try:
        return onnx_session(version_dir, params), params
    except FileNotFoundError as exc:
        raise pb_utils.TritonModelException(str(exc)) from exc


def error_response(message: str, code):
    """A Triton response that fails one request."""
    import triton_python_backend_utils as pb_utils

    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


def accepted_pixels(requests, shape: tuple[int, ...]) -> tuple[list, list[tuple[int, np.ndarray]]]:
    """Responses with an INVALID_ARG error for each request whose ``PIXELS`` are not uint8 [B, *shape],
    and (request index, pixels) of the others."""
    import triton_python_backend_utils as pb_utils

    responses, accepted = [None] * len(requests), []
    for index, request in enumerate(requests):
        try:
            accepted.append((index, checked_pixels(pb_utils.get_input_tensor_by_name(request, "PIXELS").as_numpy(), shape)))
        except ValueError as exc:
            responses[index] = error_response(str(exc), pb_utils.TritonError.INVALID_ARG)
    return responses, accepted


def batched_responses(requests, shape: tuple[int, ...], name: str, run) -> list:
    """One response per request: the accepted pixels of every request run as one batch.

    ``run(pixels [N, *shape]) -> {output name: array [N, ...]}``; its rows are split back per
    request. Bad input fails its own request (INVALID_ARG); a failing run fails the batch (INTERNAL).
    """
    import triton_python_backend_utils as pb_utils

    responses, accepted = accepted_pixels(requests, shape)
    if not accepted:
        return responses
    try:
        outputs = run(np.concatenate([pixels for _, pixels in accepted]))
    except Exception as exc:  # a runtime failure fails every request of the batch, visibly
        for index, _ in accepted:
            responses[index] = error_response(f"{name} failed: {exc}", pb_utils.TritonError.INTERNAL)
        return responses
    start = 0
    for index, pixels in accepted:
        rows = slice(start, start + len(pixels))
        start = rows.stop
        responses[index] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(k, v[rows]) for k, v in outputs.items()])
    return responses
