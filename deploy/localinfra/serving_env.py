"""``python -m localinfra.serving_env``: build the Python environments the images install, check and measure them.

It builds the project wheel and installs it, binary wheels only, into two virtual
environments under ``.local/`` (made afresh each run), then strips the debug sections of
their shared libraries (``strip --strip-debug``: symbols and code stay), as
deploy/docker/*.Dockerfile do:

- ``serving-venv``, the services image: the core dependencies with the ``services`` and
  ``nudenet`` extras;
- ``triton-venv``, the python backend of the Triton image: the core dependencies with the
  ``triton`` extra.

Each must hold exactly the distributions its requirements pull in (resolved over its own
metadata) and none of the training stack (torch, transformers, CUDA's ``nvidia-*``).
``localinfra.serving_check`` then imports, inside it and from outside the checkout, every
service's entry module (serving-venv), or what the model repository's models import and the
unpacked Tesseract (triton-venv), and ``services.moderation.profanity check`` loads the
profanity model packaged in the wheel (serving-venv). ``reports/serving_env.json`` gets the size of
each environment (total and largest distributions), the development environment's for
comparison, and the size of each image layer the project adds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from localinfra.dependency_closure import closure, forbidden, installed, project_requirements
from localinfra.dockerfiles import parse

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
MODEL_REPOSITORY = ROOT / "model_repository"
PROFANITY_MODEL = ROOT / "services" / "moderation" / "profanity_model.npz"
TESSERACT = ROOT / ".local" / "tesseract"
DOCKER = ROOT / "deploy" / "docker"
REPORT = ROOT / "reports" / "serving_env.json"
# As the Dockerfiles install: binary wheels only; kiwipiepy-model (data) is published as a source archive only.
PIP_OPTIONS = ("--only-binary=:all:", "--no-binary=kiwipiepy-model")
TARGET_BYTES = 1_000_000_000  # the serving environment stays under 1 GB
TOP = 15
MIB = 1024 * 1024


@dataclass(frozen=True)
class Environment:
    """One environment an image installs: the extras of the project wheel and the checks it must pass
    (``python -m`` commands, as its Dockerfile's final stage runs them)."""

    name: str
    image: str
    extras: tuple[str, ...]
    checks: tuple[tuple[str, ...], ...]

    @property
    def path(self) -> Path:
        return ROOT / ".local" / self.name

    @property
    def site_packages(self) -> Path:
        return self.path / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


ENVIRONMENTS = (
    Environment("serving-venv", "services", ("services", "nudenet"),
                (("localinfra.serving_check", "services"), ("services.moderation.profanity", "check"))),
    Environment("triton-venv", "triton", ("triton",),
                (("localinfra.serving_check", "models", str(MODEL_REPOSITORY), "--tesseract", str(TESSERACT)),)),
)


def _run(command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed:\n{(result.stderr or result.stdout).strip()}")
    return result.stdout


def build_wheel(directory: Path) -> Path:
    """The project wheel, built into ``directory`` (setuptools' ``build/`` folder removed when it made one)."""
    if not (ROOT / "libs" / "captioning_events").is_dir():
        raise FileNotFoundError("libs/captioning_events is missing: run `make protos` first")
    if not PROFANITY_MODEL.is_file():  # package data of services.moderation, not kept in git
        raise FileNotFoundError(f"{PROFANITY_MODEL.relative_to(ROOT)} is missing: run `make model-repository` first")
    had_build = (ROOT / "build").exists()
    try:
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(directory), str(ROOT)])
    finally:
        if not had_build:
            shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = directory.glob("captioning_pipeline-*.whl")
    return wheel


def strip_tool() -> str:
    """``strip`` of GNU binutils, installed with apt-get (Debian's ``binutils``) when the machine lacks it."""
    found = shutil.which("strip")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError("`strip` (GNU binutils) is needed to slim the environments: install binutils")
    print("serving-env: installing Debian's binutils for `strip` (first run) ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    _run([*sudo, "apt-get", "update", "-qq"])
    _run([*sudo, "apt-get", "install", "-y", "-qq", "binutils"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("strip") or "strip"


def shared_libraries(prefix: Path) -> list[Path]:
    """The files the Dockerfiles strip: ``find PREFIX -type f ( -name '*.so' -o -name '*.so.[0-9]*' )``."""
    return sorted(path for path in prefix.rglob("*.so*") if path.is_file() and not path.is_symlink()
                  and (path.name.endswith(".so") or re.search(r"\.so\.[0-9]", path.name)))


def create(environment: Environment, wheel: Path, strip: str) -> tuple[float, int]:
    """Make the environment afresh from ``wheel`` and strip it; returns the seconds it took and the bytes stripped."""
    started = time.monotonic()
    shutil.rmtree(environment.path, ignore_errors=True)
    _run([sys.executable, "-m", "venv", "--without-pip", str(environment.path)])
    extras = f"[{','.join(environment.extras)}]" if environment.extras else ""
    _run([sys.executable, "-m", "pip", "--python", str(environment.path / "bin" / "python"), "install", "-q",
          "--disable-pip-version-check", *PIP_OPTIONS, f"{wheel}{extras}"])
    before = tree_bytes(environment.path)
    libraries = shared_libraries(environment.path)
    for start in range(0, len(libraries), 200):
        _run([strip, "--strip-debug", *map(str, libraries[start : start + 200])])
    return time.monotonic() - started, before - tree_bytes(environment.path)


def verify(environment: Environment) -> dict[str, str]:
    """The installed distributions, checked against the closure of the environment's requirements."""
    distributions = installed([str(environment.site_packages)])
    extras = f"[{','.join(environment.extras)}]" if environment.extras else ""
    expected = closure([f"captioning-pipeline{extras}"], distributions)  # the wheel's own metadata
    if set(expected) - {"captioning-pipeline"} != set(closure(project_requirements(PYPROJECT, environment.extras), distributions)):
        raise RuntimeError(f"the wheel installed in {environment.name} does not declare pyproject.toml's requirements")
    names = {name: dist.version for name, dist in distributions.items()}
    if bad := forbidden(names):
        raise RuntimeError(f"{environment.name} holds {', '.join(bad)}")
    if unexpected := sorted(set(names) - set(expected)):
        raise RuntimeError(f"{environment.name} holds distributions its requirements do not pull in: {', '.join(unexpected)}")
    return names


def check_imports(environment: Environment) -> list[str]:
    """Run the environment's checks inside it, from a folder outside the checkout."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    lines = []
    with tempfile.TemporaryDirectory() as elsewhere:
        for arguments in environment.checks:
            output = _run([str(environment.path / "bin" / "python"), "-m", *arguments],
                          cwd=Path(elsewhere), env=env)
            lines.extend(output.strip().splitlines())
    return lines


def tree_bytes(path: Path, skip: tuple[str, ...] = ()) -> int:
    """Apparent size of the regular files under ``path`` (symbolic links not followed), folders named in ``skip`` left out."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, subfolders, files in os.walk(path):
        subfolders[:] = [name for name in subfolders if name not in skip]
        for name in files:
            file = Path(folder, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def distribution_sizes(site_packages: Path) -> dict[str, tuple[str, int]]:
    """Normalised name -> (version, bytes of the files its RECORD lists)."""
    sizes = {}
    for name, dist in installed([str(site_packages)]).items():
        total = 0
        for file in dist.files or ():
            located = Path(dist.locate_file(file))
            if located.is_file() and not located.is_symlink():
                total += located.stat().st_size
        sizes[name] = (dist.version, total)
    return sizes


def measure(prefix: Path, site_packages: Path) -> dict:
    """Total size of an environment and its largest distributions."""
    sizes = distribution_sizes(site_packages)
    largest = sorted(sizes.items(), key=lambda item: -item[1][1])[:TOP]
    total = tree_bytes(prefix)
    return {
        "bytes": total,
        "mib": round(total / MIB, 1),
        "distributions": len(sizes),
        "largest": [{"name": name, "version": version, "mib": round(size / MIB, 1)} for name, (version, size) in largest],
        "training_stack_mib": round(sum(size for name, (_, size) in sizes.items() if forbidden([name])) / MIB, 1),
    }


def _prepared(repository: Path) -> None:
    if not list(repository.glob("*/*/*.onnx")) or not list(repository.glob("scene_captioner/1/student/*.onnx")):
        raise FileNotFoundError(f"{repository} is not prepared: run `make model-repository` first")


def tesseract_outside_bytes() -> int:
    """Bytes of the shared libraries the unpacked Tesseract loads from this machine, glibc's and the C++ runtime's aside."""
    from perception.tesseract import tesseract_command

    binary, env = tesseract_command(TESSERACT)
    paths = re.findall(r"=> (/\S+)", _run(["ldd", binary], env=env))
    system = ("libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so", "ld-linux", "libstdc++.so", "libgcc_s.so")
    outside = {Path(path).resolve() for path in paths
               if not Path(path).resolve().is_relative_to(TESSERACT.resolve()) and not Path(path).name.startswith(system)}
    return sum(path.stat().st_size for path in outside)


def image_layers(environments: dict[str, dict]) -> dict:
    """The layers each image adds to its base, measured from what the same steps made here."""
    _prepared(MODEL_REPOSITORY)
    stub = next((ROOT / ".local" / "triton").glob("pytriton-*/pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub"), None)
    tesseract_tree = TESSERACT / "tree"

    def layer(path: str, size: int | None, note: str, at_most: int | None = None) -> dict:
        sizes = {"mib": None if size is None else round(size / MIB, 1)}
        if at_most is not None:
            sizes["mib_at_most"] = round(at_most / MIB, 1)
        return {"path": path, **sizes, "made_by": note}

    tesseract = tree_bytes(tesseract_tree) if tesseract_tree.exists() else None

    return {
        "captioning/services": {
            "dockerfile": "deploy/docker/services.Dockerfile",
            "base": parse(DOCKER / "services.Dockerfile").base_image(),
            "layers": [
                layer("/opt/venv", environments["serving-venv"]["bytes"], "serving-venv: the project wheel with [services,nudenet]"),
            ],
        },
        "captioning/triton": {
            "dockerfile": "deploy/docker/triton.Dockerfile",
            "base": parse(DOCKER / "triton.Dockerfile").base_image(),
            "layers": [
                layer("/usr (python3.11, libpython3.11, libarchive13)", None, "Ubuntu packages (deadsnakes): not measurable here"),
                layer("/opt/venv", environments["triton-venv"]["bytes"], "triton-venv: the project wheel with [triton]"),
                layer("/opt/tritonserver/backends/python/triton_python_backend_stub", stub.stat().st_size if stub else None,
                      "the Python 3.11 stub of the nvidia-pytriton wheel (.local/triton)"),
                layer("/opt/tesseract", tesseract,
                      "Tesseract unpacked by `perception prepare` (.local/tesseract). The image's builder, a slim Debian, "
                      "also unpacks shared libraries this machine has: at most those outside the tree that it loads, glibc's aside",
                      None if tesseract is None else tesseract + tesseract_outside_bytes()),
                layer("/models", tree_bytes(MODEL_REPOSITORY, skip=("__pycache__", "trt_cache")), "`make model-repository` (model_repository/)"),
            ],
        },
    }


def main() -> int:
    began = time.monotonic()
    report: dict = {"python": ".".join(map(str, sys.version_info[:3])), "pip_options": list(PIP_OPTIONS),
                    "target_bytes": TARGET_BYTES, "environments": {}}
    strip = strip_tool()
    with tempfile.TemporaryDirectory() as directory:
        print("serving-env: building the project wheel ...", flush=True)
        wheel = build_wheel(Path(directory))
        for environment in ENVIRONMENTS:
            print(f"{environment.name}: installing the wheel with [{','.join(environment.extras)}] ...", flush=True)
            seconds, stripped = create(environment, wheel, strip)
            names = verify(environment)
            for line in check_imports(environment):
                print(f"{environment.name}: {line}", flush=True)
            sizes = measure(environment.path, environment.site_packages)
            report["environments"][environment.name] = {
                "image": f"captioning/{environment.image}", "extras": list(environment.extras), "install_s": round(seconds, 1),
                "debug_sections_stripped_mib": round(stripped / MIB, 1),
                **sizes, "installed": names,
            }
            print(f"{environment.name}: {len(names)} distributions, {sizes['mib']} MiB, none of the training stack "
                  f"(installed in {seconds:.0f} s)", flush=True)
    dev_prefix = Path(sys.prefix)
    dev = measure(dev_prefix, Path(sysconfig.get_paths()["purelib"]))
    report["development"] = {"path": os.path.relpath(dev_prefix, ROOT), **dev}
    serving = report["environments"]["serving-venv"]
    report["serving_vs_development"] = round(serving["bytes"] / dev["bytes"], 3)
    report["serving_under_target"] = serving["bytes"] < TARGET_BYTES
    report["images"] = image_layers(report["environments"])
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"development environment: {dev['mib']} MiB ({dev['training_stack_mib']} MiB of it torch, transformers and CUDA)")
    print(f"serving-venv is {100 * report['serving_vs_development']:.0f}% of it; "
          f"{'under' if report['serving_under_target'] else 'OVER'} the {TARGET_BYTES / 1e9:.0f} GB target")
    print(f"wrote {REPORT.relative_to(ROOT)} in {time.monotonic() - began:.0f} s")
    return 0 if report["serving_under_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
