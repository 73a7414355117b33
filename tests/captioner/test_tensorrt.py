"""TensorRT FP16 engines for the GPU configuration (needs an NVIDIA GPU)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from captioner.runtime import OnnxCaptioner
from captioner.tensorrt import execution_providers, gpu_available
from tests.conftest import REPO_ROOT

AVAILABLE, REASON = gpu_available()
EXPORTED = REPO_ROOT / "model_repository" / "scene_captioner" / "1" / "student"


def test_cpu_build_refuses_gpu_providers_with_a_clear_error() -> None:
    if AVAILABLE:
        pytest.skip("this machine has TensorRT")
    with pytest.raises(RuntimeError, match="TensorrtExecutionProvider is not available"):
        execution_providers("TensorrtExecutionProvider,CUDAExecutionProvider")
    assert execution_providers("CPUExecutionProvider") == ["CPUExecutionProvider"]


def test_gpu_config_is_selectable_without_code_changes() -> None:
    gpu = (REPO_ROOT / "model_repository" / "scene_captioner" / "configs" / "gpu.pbtxt").read_text()
    assert "KIND_GPU" in gpu and "TensorrtExecutionProvider" in gpu and 'name: "scene_captioner"' in gpu


@pytest.mark.gpu
@pytest.mark.skipif(not AVAILABLE, reason=f"TensorRT path needs an NVIDIA GPU: {REASON}")
def test_tensorrt_fp16_engines_build_and_agree_with_cpu(tmp_path) -> None:
    cache = tmp_path / "trt_cache"
    subprocess.run([sys.executable, "-m", "captioner", "tensorrt", str(EXPORTED), "--cache", str(cache), "--batch-sizes", "1", "8"], check=True)
    assert any(cache.iterdir()), "no engine was cached"
    gpu = OnnxCaptioner(EXPORTED, execution_providers("TensorrtExecutionProvider,CUDAExecutionProvider", cache_dir=cache))
    cpu = OnnxCaptioner(EXPORTED)
    pixels = np.random.default_rng(0).integers(0, 255, (8, 3, 96, 96), dtype=np.uint8)
    same = sum(a.text == b.text for a, b in zip(gpu.caption(pixels, ["en"] * 8), cpu.caption(pixels, ["en"] * 8)))
    assert same >= 6, f"FP16 TensorRT agrees with CPU fp32 on only {same}/8 images"
