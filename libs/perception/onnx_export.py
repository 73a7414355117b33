"""Export a torch module to ONNX with a dynamic batch axis, checked against torch with ONNX Runtime."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

OPSET = 18


def export_checked(module, sample: np.ndarray, target: Path, input_name: str, output_names: tuple[str, ...],
                   atol: float = 1e-3) -> None:
    """Write ``module`` (one float32 input, batch first) to ``target``; RuntimeError when ONNX Runtime disagrees."""
    import onnxruntime as ort
    import torch

    # quiet the exporter's notes on optional packages (after torch's import, which configures its loggers)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    inputs = torch.from_numpy(sample)
    with torch.no_grad():
        expected = module(inputs)
    expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    program = torch.onnx.export(
        module, (inputs,), dynamo=True, opset_version=OPSET, verbose=False,
        input_names=[input_name], output_names=list(output_names),
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    program.save(str(partial))
    try:
        session = ort.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        actual = session.run(list(output_names), {input_name: sample})
        for name, ours, theirs in zip(output_names, actual, expected):
            if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-4, atol=atol):
                raise RuntimeError(f"{target.name}: ONNX output {name} disagrees with torch (shape {ours.shape} against {theirs.shape})")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
