"""The distributions a set of requirements pulls in, resolved over installed package metadata.

``closure`` follows each requirement's ``Requires-Dist`` recursively, with the extras
asked for and the environment markers evaluated for the running interpreter, the way pip
decided what to install. It resolves nothing new: every distribution it reaches must be
installed (at a version the requirement accepts), so the answer describes the environment
as it is. ``project_requirements`` reads the roots from ``pyproject.toml``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Protocol

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Distributions the serving environment must never hold: the training stack and CUDA
# (``triton`` is the GPU compiler torch pulls in, not ``tritonclient``).
FORBIDDEN_NAMES = frozenset({"transformers", "sentence-transformers", "triton", "tensorflow", "jax"})
FORBIDDEN_PREFIXES = ("torch", "nvidia-")


class Distribution(Protocol):
    """What ``closure`` reads of an installed distribution (``importlib.metadata.Distribution`` has it)."""

    @property
    def version(self) -> str: ...

    @property
    def requires(self) -> list[str] | None: ...


def installed(paths: Iterable[str] | None = None) -> dict[str, metadata.Distribution]:
    """Installed distributions by normalised name (of ``sys.path``, or of the given site directories)."""
    found = metadata.distributions(path=list(paths)) if paths is not None else metadata.distributions()
    result: dict[str, metadata.Distribution] = {}
    for dist in found:
        result.setdefault(canonicalize_name(dist.metadata["Name"]), dist)  # the first on the path wins, as for imports
    return result


def project_requirements(pyproject: Path, extras: Iterable[str] = ()) -> list[str]:
    """The core dependencies of ``pyproject.toml`` and those of the named optional extras."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise KeyError(f"{pyproject} has no extra {', '.join(unknown)}")
    return [*project["dependencies"], *(req for extra in extras for req in optional[extra])]


def closure(requirements: Iterable[str], distributions: Mapping[str, Distribution]) -> dict[str, str]:
    """Normalised name -> installed version of every distribution ``requirements`` pull in."""
    extras_done: dict[str, set[str]] = {}
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        dist = distributions.get(name)
        if dist is None:
            raise LookupError(f"{requirement} is required but {name} is not installed")
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise LookupError(f"{requirement} is required but {name} {dist.version} is installed")
        done = extras_done.get(name)
        extras = {canonicalize_name(extra) for extra in requirement.extras}
        if done is not None and extras <= done:
            continue
        # The base requirements once, then those of each extra not followed before.
        contexts = ({""} if done is None else set()) | (extras - (done or set()))
        extras_done[name] = (done or set()) | extras
        for text in dist.requires or ():
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None:
                if "" in contexts:
                    pending.append(dependency)
            elif any(marker.evaluate({"extra": extra}) for extra in contexts):
                pending.append(dependency)
    return {name: distributions[name].version for name in sorted(extras_done)}


def forbidden(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that belong to the training stack or CUDA."""
    normalised = (canonicalize_name(name) for name in names)
    return sorted(name for name in normalised if name in FORBIDDEN_NAMES or name.startswith(FORBIDDEN_PREFIXES))
