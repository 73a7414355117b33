"""The classifier's and detector's Triton ``model.py`` files, driven through a stand-in for the python backend's module.

Batches mix good and bad requests: each request gets its own response.
"""

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perception.detection import letterbox
from perception.real_photos import REAL_PHOTOS

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
CHELSEA = next(photo for photo in REAL_PHOTOS if photo.name == "chelsea")


def _backend_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")

    class TritonError:
        INVALID_ARG, INTERNAL = "INVALID_ARG", "INTERNAL"

        def __init__(self, message, code=None):
            self.message, self.code = message, code

    class TritonModelException(Exception):
        pass

    class Tensor:
        def __init__(self, name, array):
            self.name, self.array = name, array

        def as_numpy(self):
            return self.array

    class InferenceResponse:
        def __init__(self, output_tensors, error=None):
            self.outputs = {tensor.name: tensor.array for tensor in output_tensors}
            self.error = error

    module.TritonError, module.TritonModelException = TritonError, TritonModelException
    module.Tensor, module.InferenceResponse = Tensor, InferenceResponse
    module.get_input_tensor_by_name = lambda request, name: Tensor(name, request[name])
    return module


@pytest.fixture
def load_model(monkeypatch):
    def load(name: str, repository: Path = REPOSITORY, **params: str):
        monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _backend_utils())
        spec = importlib.util.spec_from_file_location(f"{name}_model", REPOSITORY / name / "1" / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.TritonPythonModel()
        parameters = {"providers": "CPUExecutionProvider", "intra_op_threads": "2", **params}
        model.initialize({
            "model_config": json.dumps({"parameters": {key: {"string_value": value} for key, value in parameters.items()}}),
            "model_repository": str(repository / name),
            "model_version": "1",
        })
        return model

    return load


@pytest.mark.parametrize("name", ["classifier", "detector"])
def test_a_missing_model_file_names_the_make_target(load_model, tmp_path, name):
    with pytest.raises(Exception, match="make model-repository") as raised:
        load_model(name, repository=tmp_path)
    assert type(raised.value).__name__ == "TritonModelException"


def test_the_classifier_answers_each_request_of_a_mixed_batch(load_model):
    model = load_model("classifier")
    good = np.zeros((1, 224, 224, 3), dtype=np.uint8)
    requests = [{"PIXELS": good}, {"PIXELS": good.astype(np.float32)}, {"PIXELS": np.repeat(good, 2, axis=0)}]
    first, bad, third = model.execute(requests)
    assert first.error is None and first.outputs["PROBABILITIES"].shape == (1, 1000) and first.outputs["FEATURES"].shape == (1, 1280)
    assert bad.error.code == "INVALID_ARG" and "UINT8" in bad.error.message
    assert third.error is None and third.outputs["PROBABILITIES"].shape == (2, 1000)
    np.testing.assert_allclose(third.outputs["PROBABILITIES"].sum(axis=1), 1.0, rtol=1e-4)


def test_the_detector_answers_each_request_of_a_mixed_batch(load_model):
    model = load_model("detector", score_threshold="0.25", iou_threshold="0.45", zoom_out_factors="2")
    pixels, _ = letterbox(Image.fromarray(CHELSEA.pixels()))
    wrong_size = np.zeros((1, 224, 224, 3), dtype=np.uint8)
    cat, bad = model.execute([{"PIXELS": pixels[None]}, {"PIXELS": wrong_size}])
    rows = cat.outputs["DETECTIONS"]
    assert cat.error is None and rows.shape == (1, 100, 6) and rows.dtype == np.float32
    names = (REPOSITORY / "detector" / "1" / "coco.names").read_text().split("\n")
    assert names[int(rows[0, 0, 5])] == "cat" and rows[0, 0, 4] >= 0.25
    assert bad.error.code == "INVALID_ARG" and "416" in bad.error.message
