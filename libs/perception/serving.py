"""What the classifier and detector Triton models share: their ONNX Runtime session and input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from captioner.tensorrt import execution_providers


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
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(params.get("intra_op_threads", "0"))
    return ort.InferenceSession(str(model), options, providers=providers)


def checked_pixels(pixels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``pixels`` as uint8 [B, *shape]; ValueError naming what is wrong otherwise."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"PIXELS must be UINT8, got {pixels.dtype}")
    if pixels.ndim != len(shape) + 1 or pixels.shape[1:] != tuple(shape) or pixels.shape[0] == 0:
        raise ValueError(f"PIXELS must be [B, {', '.join(map(str, shape))}], got {list(pixels.shape)}")
    return pixels
