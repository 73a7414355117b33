"""The tools that check the Helm chart, pinned and cached under ``<state>/tools``.

- helm and kubeconform, built from the Go module proxy (``localinfra.tools.go_tool``);
- the Kubernetes JSON schemas of the ``kubernetes-validate`` package (dev extra), rewritten so
  that kubeconform resolves their references offline;
- the CRDs of KEDA and prometheus-operator, read from their Go module zips
  (``go mod download``), and their schemas converted to strict JSON schemas;
- Bitnami's readme-generator-for-helm, installed by ``npm ci`` from the lock file kept in
  ``deploy/localinfra/node/readme-generator``.

Usage::

    python -m localinfra.chart_tools install   # everything above (first run: about 3 minutes)
    python -m localinfra.chart_tools readme    # regenerate the parameter table of helm/captioning/README.md
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import yaml

from localinfra.settings import InfraConfig
from localinfra.tools import go_env, go_tool, tools_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "captioning"
README_GENERATOR_LOCK = Path(__file__).resolve().parent / "node" / "readme-generator"

HELM = ("helm", "helm.sh/helm/v3/cmd/helm", "v3.19.0")
# What helm's own release build sets (its Makefile): the version, and the Kubernetes version of its client-go
# (v0.34 -> 1.34) that `helm template` and `helm lint` assume; without them both assume Kubernetes 1.20.
HELM_LDFLAGS = " ".join(
    f"-X helm.sh/helm/v3/{variable}"
    for variable in (
        "internal/version.version=v3.19.0",
        "pkg/chartutil.k8sVersionMajor=1", "pkg/chartutil.k8sVersionMinor=34",
        "pkg/lint/rules.k8sVersionMajor=1", "pkg/lint/rules.k8sVersionMinor=34",
    )
)
KUBECONFORM = ("kubeconform", "github.com/yannh/kubeconform/cmd/kubeconform", "v0.7.0")
# The Kubernetes releases the rendered chart is validated against: the oldest the chart supports and the newest
# schema set of the pinned kubernetes-validate.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")


@dataclass(frozen=True)
class CrdSource:
    """CRD manifests inside a Go module's zip."""

    module: str
    version: str
    paths: tuple[str, ...]


KEDA = CrdSource(
    "github.com/kedacore/keda/v2",
    "v2.17.2",
    ("config/crd/bases/keda.sh_scaledobjects.yaml", "config/crd/bases/keda.sh_triggerauthentications.yaml"),
)
PROMETHEUS_OPERATOR = CrdSource(
    "github.com/prometheus-operator/prometheus-operator",
    "v0.85.0",
    (
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ),
)
CRD_SOURCES = (KEDA, PROMETHEUS_OPERATOR)


def helm(config: InfraConfig | None = None) -> Path:
    """The pinned helm binary, built on first use."""
    return go_tool(*HELM, config=config, ldflags=HELM_LDFLAGS)


def kubeconform(config: InfraConfig | None = None) -> Path:
    """The pinned kubeconform binary, built on first use."""
    return go_tool(*KUBECONFORM, config=config)


def _module_dir(source: CrdSource, config: InfraConfig | None) -> Path:
    """The unpacked module zip of ``source`` in the tools' module cache, downloaded on first use."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{source.module}@{source.version}"],
        env=go_env(config), cwd=tools_dir(config), capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"go mod download {source.module}@{source.version} failed:\n{(result.stdout + result.stderr)[-2000:]}")
    return Path(json.loads(result.stdout)["Dir"])


def crd_manifests(config: InfraConfig | None = None) -> list[Path]:
    """The CRD YAML files of the custom resources the chart renders (ScaledObject, TriggerAuthentication,
    ServiceMonitor, PrometheusRule), from the pinned KEDA and prometheus-operator modules."""
    tools_dir(config).mkdir(parents=True, exist_ok=True)
    manifests = []
    for source in CRD_SOURCES:
        root = _module_dir(source, config)
        manifests += [root / path for path in source.paths]
    missing = [str(path) for path in manifests if not path.is_file()]
    if missing:
        raise RuntimeError(f"CRD manifests missing from the module zips: {', '.join(missing)}")
    return manifests


def strict_schema(node: object) -> object:
    """A CRD's openAPIV3Schema as a JSON schema that refuses unknown fields, as the API server's strict
    field validation does: every object that declares ``properties`` and neither ``additionalProperties``
    nor ``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties: false``."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: strict_schema(value) for key, value in node.items()}
    if "properties" in converted and "additionalProperties" not in converted and not converted.get("x-kubernetes-preserve-unknown-fields"):
        converted["additionalProperties"] = False
    if converted.get("nullable") and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    return converted


def _stamped(directory: Path, version: str) -> bool:
    stamp = directory / ".version"
    return stamp.exists() and stamp.read_text() == version


def crd_schema_dir(config: InfraConfig | None = None) -> Path:
    """kubeconform schemas of the CRDs, laid out as ``<group>/<kind>_<version>.json``."""
    target = tools_dir(config) / "kubeconform-schemas" / "crds"
    version = json.dumps([[source.module, source.version, *source.paths] for source in CRD_SOURCES])
    if _stamped(target, version):
        return target
    shutil.rmtree(target, ignore_errors=True)
    for manifest in crd_manifests(config):
        crd = yaml.safe_load(manifest.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"].lower()
        for served in crd["spec"]["versions"]:
            schema = strict_schema(served["schema"]["openAPIV3Schema"])
            path = target / group / f"{kind}_{served['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema))
    (target / ".version").write_text(version)
    return target


_ABSOLUTE_REF = re.compile(r'"\$ref": "/api/_definitions\.json#')


def kubernetes_schema_dir(config: InfraConfig | None = None) -> Path:
    """The strict Kubernetes schemas of ``KUBERNETES_VERSIONS``, laid out as ``v<version>-local-strict/<kind>-<group>-<version>.json``.

    kubernetes-validate's schemas carry ``$id``s on kubernetes.io and absolute ``$ref``s to
    ``/api/_definitions.json``; the copies drop the ids and point the references at the
    ``_definitions.json`` beside them, so nothing is fetched.
    """
    package_version = metadata.version("kubernetes-validate")
    target = tools_dir(config) / "kubeconform-schemas" / "kubernetes"
    stamp = json.dumps([package_version, *KUBERNETES_VERSIONS])
    if _stamped(target, stamp):
        return target
    shutil.rmtree(target, ignore_errors=True)
    source = Path(str(resources.files("kubernetes_validate"))) / "kubernetes-json-schema"
    for version in KUBERNETES_VERSIONS:
        origin = source / f"v{version}-local-strict"
        if not origin.is_dir():
            raise RuntimeError(f"kubernetes-validate {package_version} has no schemas for Kubernetes {version}")
        destination = target / origin.name
        destination.mkdir(parents=True)
        for schema_file in origin.glob("*.json"):
            schema = json.loads(_ABSOLUTE_REF.sub('"$ref": "_definitions.json#', schema_file.read_text()))
            schema.pop("$id", None)
            (destination / schema_file.name).write_text(json.dumps(schema))
    (target / ".version").write_text(stamp)
    return target


def kubeconform_command(kubernetes_version: str, files: list[Path] | None = None, config: InfraConfig | None = None) -> list[str]:
    """kubeconform in strict mode over ``files`` (default: stdin), offline, against the Kubernetes and CRD schemas;
    JSON output listing every resource. One worker: each schema is compiled once for all the files."""
    return [
        str(kubeconform(config)), "-strict", "-summary", "-verbose", "-output", "json", "-n", "1",
        "-kubernetes-version", kubernetes_version,
        "-schema-location", f"{kubernetes_schema_dir(config)}/{{{{ .NormalizedKubernetesVersion }}}}-local{{{{ .StrictSuffix }}}}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        "-schema-location", f"{crd_schema_dir(config)}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
        *([str(path) for path in files] if files else ["-"]),
    ]


def readme_generator(config: InfraConfig | None = None) -> Path:
    """The pinned ``readme-generator`` script, installed by ``npm ci`` on first use."""
    target = tools_dir(config) / "readme-generator"
    lock = (README_GENERATOR_LOCK / "package-lock.json").read_text()
    script = target / "node_modules" / ".bin" / "readme-generator"
    if _stamped(target, lock) and script.exists():
        return script
    if shutil.which("npm") is None:
        raise RuntimeError("npm (Node.js 18+) is needed to install Bitnami's readme-generator-for-helm: install it from your distribution")
    print("readme-generator: installing with npm (first run)...", flush=True)
    began = time.monotonic()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(README_GENERATOR_LOCK / name, target / name)
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], cwd=target, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"npm ci of readme-generator failed:\n{(result.stdout + result.stderr)[-3000:]}")
    (target / ".version").write_text(lock)
    print(f"readme-generator: installed in {time.monotonic() - began:.0f}s", flush=True)
    return script


def generate_readme(readme: Path, values: Path = CHART_DIR / "values.yaml", config: InfraConfig | None = None) -> None:
    """Rewrite the parameter table of ``readme`` from the ``@section``/``@param`` comments of ``values``."""
    result = subprocess.run(
        [str(readme_generator(config)), "--values", str(values), "--readme", str(readme)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"readme-generator failed:\n{(result.stdout + result.stderr)[-3000:]}")


def install(config: InfraConfig | None = None) -> None:
    """Every tool and schema the chart tests use."""
    helm(config)
    kubeconform(config)
    kubernetes_schema_dir(config)
    crd_schema_dir(config)
    readme_generator(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localinfra.chart_tools", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["install", "readme"])
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
        print(f"chart tools ready in {tools_dir()}")
    else:
        generate_readme(CHART_DIR / "README.md")
        print(f"updated {CHART_DIR.relative_to(REPO_ROOT) / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
