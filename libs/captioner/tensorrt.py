"""ONNX Runtime execution providers, including TensorRT FP16 engines for GPU machines."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def execution_providers(names: str, fp16: bool = True, cache_dir: Path | None = None) -> list:
    """Providers for ``"TensorrtExecutionProvider,CUDAExecutionProvider,..."``, with TensorRT options.

    RuntimeError when a GPU provider is asked for but this ONNX Runtime build lacks it.
    """
    available = ort.get_available_providers()
    providers: list = []
    for name in (part.strip() for part in names.split(",") if part.strip()):
        if name not in available:
            raise RuntimeError(
                f"{name} is not available in this onnxruntime build (available: {', '.join(available)}); "
                "GPU serving needs onnxruntime-gpu with CUDA and TensorRT"
            )
        if name == "TensorrtExecutionProvider":
            options = {"trt_fp16_enable": fp16, "trt_engine_cache_enable": cache_dir is not None}
            if cache_dir is not None:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
                options["trt_engine_cache_path"] = str(cache_dir)
            providers.append((name, options))
        else:
            providers.append(name)
    return providers


def gpu_available() -> tuple[bool, str]:
    """(True, "") when TensorRT can run here, else (False, why not)."""
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        return False, "onnxruntime has no TensorrtExecutionProvider here (CPU-only build or no GPU)"
    try:
        import ctypes

        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False, "no NVIDIA driver (libcuda.so.1) on this machine"
    return True, ""
