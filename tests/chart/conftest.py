"""Fixtures of the chart tests: the pinned tools (built or installed on first use) and rendered manifests.

The matrix: the chart's defaults and each values file of helm/captioning/ci/.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from localinfra import chart_tools

CHART = chart_tools.CHART_DIR
RELEASE = "demo"
NAMESPACE = "pipeline"
MATRIX = {"defaults": None, **{path.name.removesuffix("-values.yaml"): path for path in sorted((CHART / "ci").glob("*-values.yaml"))}}


class Manifests(list):
    """The objects of one rendering."""

    def of_kind(self, kind: str) -> list[dict]:
        return [doc for doc in self if doc["kind"] == kind]

    def get(self, kind: str, component: str = "") -> dict:
        """The one object of ``kind`` named after ``component`` (the release's own name when empty)."""
        name = f"{RELEASE}-captioning" + (f"-{component}" if component else "")
        found = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"{len(found)} {kind} named {name}"
        return found[0]


@dataclass(frozen=True)
class Chart:
    """helm on the chart, with values files and/or a dict of values."""

    helm: Path

    def run(self, command: str, values: Path | None = None, overrides: dict | None = None) -> subprocess.CompletedProcess:
        """``helm template`` or ``helm lint --strict`` of the chart with a values file and/or overrides."""
        with tempfile.TemporaryDirectory() as scratch:
            arguments = ["-f", str(values)] if values else []
            if overrides is not None:
                override_file = Path(scratch) / "overrides.yaml"
                override_file.write_text(yaml.safe_dump(overrides))
                arguments += ["-f", str(override_file)]
            if command == "template":
                head = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
            else:
                head = [command, "--strict", str(CHART), "--namespace", NAMESPACE]
            return subprocess.run([str(self.helm), *head, *arguments], capture_output=True, text=True)

    def template_text(self, values: Path | None = None, overrides: dict | None = None) -> str:
        result = self.run("template", values, overrides)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def render(self, values: Path | None = None, overrides: dict | None = None) -> Manifests:
        return Manifests(doc for doc in yaml.safe_load_all(self.template_text(values, overrides)) if doc)


@pytest.fixture(scope="session")
def chart() -> Chart:
    """The pinned tools, installed on first use (helm and kubeconform built, schemas converted, readme-generator installed)."""
    chart_tools.install()
    return Chart(chart_tools.helm())


@pytest.fixture(scope="session")
def matrix(chart: Chart) -> dict[str, Manifests]:
    """Each case of the matrix, rendered once."""
    return {case: chart.render(values) for case, values in MATRIX.items()}


@pytest.fixture(scope="session")
def defaults(matrix: dict[str, Manifests]) -> Manifests:
    return matrix["defaults"]


def deployment_container(manifests: Manifests, component: str) -> dict:
    (container,) = manifests.get("Deployment", component)["spec"]["template"]["spec"]["containers"]
    return container


def config_env(manifests: Manifests) -> dict[str, str]:
    """The ConfigMap every service reads."""
    return manifests.get("ConfigMap")["data"]


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[callable]:
    """Replace the process's CAPTIONING_* environment by the one given (settings classes read it)."""
    import os

    def apply(env: dict[str, str]) -> None:
        for name in [name for name in os.environ if name.startswith("CAPTIONING_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    yield apply
