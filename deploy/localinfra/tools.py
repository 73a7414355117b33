"""Command-line tools the project builds from package registries, cached under the state directory.

``go_tool`` builds one Go command from the module proxy at a pinned version
(``go install module/cmd@version``) into ``<state>/tools/bin``; ``go_module_tool``
builds commands of a small wrapper module kept in the repository (for modules whose
``go.mod`` has replace directives, which ``go install pkg@version`` refuses). Each
build prints one progress line and shows Go's output only when it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from localinfra.settings import InfraConfig


def tools_dir(config: InfraConfig | None = None) -> Path:
    """Root of the cached tools (``<install root>/tools``)."""
    return (config or InfraConfig()).install_root / "tools"


def tool_path(name: str, config: InfraConfig | None = None) -> Path:
    """Where the tool ``name`` is (or will be) installed."""
    return tools_dir(config) / "bin" / name


def go_env(config: InfraConfig | None = None) -> dict[str, str]:
    """The environment of ``go`` commands for the tools: binaries, GOPATH and module cache under ``tools_dir``."""
    if shutil.which("go") is None:
        raise RuntimeError("Go 1.24+ is needed to build the project's tools: install it from your distribution or go.dev")
    root = tools_dir(config)
    return {
        **os.environ,
        "GOBIN": str(root / "bin"),
        "GOPATH": str(root / "go"),
        "GOMODCACHE": str(root / "go" / "pkg" / "mod"),
        "CGO_ENABLED": "0",
        "GOFLAGS": "-buildvcs=false -trimpath",
    }


def _run_build(name: str, command: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    print(f"{name}: building from the Go module proxy (first run)...", flush=True)
    began = time.monotonic()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building {name} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    print(f"{name}: built in {time.monotonic() - began:.0f}s", flush=True)


def _stamp(name: str, config: InfraConfig | None) -> Path:
    return tools_dir(config) / "bin" / f".{name}.version"


def _current(name: str, version: str, config: InfraConfig | None) -> Path | None:
    binary, stamp = tool_path(name, config), _stamp(name, config)
    if binary.exists() and stamp.exists() and stamp.read_text() == version:
        return binary
    return None


def go_tool(name: str, package: str, version: str, config: InfraConfig | None = None, ldflags: str = "") -> Path:
    """The binary ``name`` of ``package@version``, built on first use; returns its path.

    ``ldflags`` (``-X`` settings a project's own release build passes) are part of the version stamp.
    """
    stamp = f"{version} {ldflags}".strip()
    if (binary := _current(name, stamp, config)) is not None:
        return binary
    env = go_env(config)
    _run_build(name, ["go", "install", *(["-ldflags", ldflags] if ldflags else []), f"{package}@{version}"], env)
    _stamp(name, config).write_text(stamp)
    return tool_path(name, config)


def go_module_tool(
    names: list[str], module_dir: Path, packages: list[str], config: InfraConfig | None = None, ldflags: str = ""
) -> list[Path]:
    """Build ``packages`` of the wrapper module in ``module_dir`` (versions pinned by its go.mod/go.sum).

    The go.mod's content and ``ldflags`` are the version stamp: editing the pins rebuilds.
    """
    version = f"{(module_dir / 'go.mod').read_text()}{ldflags}"
    binaries = [_current(name, version, config) for name in names]
    if all(binaries):
        return [binary for binary in binaries if binary is not None]
    env = go_env(config)
    _run_build(", ".join(names), ["go", "install", *(["-ldflags", ldflags] if ldflags else []), *packages], env, cwd=module_dir)
    for name in names:
        _stamp(name, config).write_text(version)
    return [tool_path(name, config) for name in names]
