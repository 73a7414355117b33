"""What the serving extras pull in, resolved recursively over the installed package metadata:
no torch, no transformers, no CUDA. `make serving-env` builds those environments and measures them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from localinfra.dependency_closure import closure, forbidden, installed, project_requirements
from localinfra.serving_check import model_imports
from localinfra.serving_env import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"


@pytest.fixture(scope="module")
def distributions():
    return installed()


@pytest.mark.parametrize("environment", ENVIRONMENTS, ids=lambda e: e.name)
def test_serving_environments_pull_in_no_training_library(distributions, environment) -> None:
    roots = project_requirements(PYPROJECT, environment.extras)
    pulled = closure(roots, distributions)
    assert forbidden(pulled) == []
    # The closure is the whole tree, not just the roots: e.g. tritonclient brings grpcio and ml-dtypes.
    assert {canonicalize_name(Requirement(root).name) for root in roots} < set(pulled)
    assert {"onnxruntime", "grpcio", "ml-dtypes", "pydantic-core"} <= set(pulled)


def test_the_services_image_holds_the_services_libraries_and_no_scikit_learn(distributions) -> None:
    pulled = closure(project_requirements(PYPROJECT, ("services", "nudenet")), distributions)
    assert {"lancedb", "pyarrow", "kiwipiepy-model", "nudenet", "fastapi"} <= set(pulled)
    # Profanity is scored with numpy (services.moderation.profanity); nothing else needs scikit-learn.
    assert not {"scikit-learn", "scipy", "alt-profanity-check", "tokenizers", "gevent"} & set(pulled)


def test_the_model_extra_does_pull_in_the_training_stack(distributions) -> None:
    pulled = closure(project_requirements(PYPROJECT, ("model",)), distributions)
    assert {"torch", "transformers"} <= set(forbidden(pulled))


@dataclass
class FakeDistribution:
    version: str
    requires: list[str]


def test_closure_follows_extras_and_markers_only_where_they_apply() -> None:
    distributions = {
        "app": FakeDistribution("1.0", ["lib[fast]>=2", "legacy; python_version < '3'", "extra-only; extra == 'big'"]),
        "lib": FakeDistribution("2.1", ["base", "speedup; extra == 'fast'", "giant; extra == 'all'"]),
        "base": FakeDistribution("1.0", []),
        "speedup": FakeDistribution("0.3", ["base"]),
    }
    assert closure(["app"], distributions) == {"app": "1.0", "base": "1.0", "lib": "2.1", "speedup": "0.3"}
    assert closure(["lib"], distributions) == {"base": "1.0", "lib": "2.1"}
    with pytest.raises(LookupError, match="giant"):
        closure(["lib[all]"], distributions)  # required but not installed
    with pytest.raises(LookupError, match="2.1 is installed"):
        closure(["lib>=3"], distributions)


def test_unknown_extra_is_an_error() -> None:
    with pytest.raises(KeyError, match="no-such-extra"):
        project_requirements(PYPROJECT, ("no-such-extra",))


def test_model_imports_are_read_from_every_model_version() -> None:
    modules = model_imports(ROOT / "model_repository")
    assert "perception.composition" in modules  # captioner/2/model.py
    assert "captioner.runtime" in modules  # scene_captioner/1/model.py
    assert "triton_python_backend_utils" not in modules and "json" not in modules
