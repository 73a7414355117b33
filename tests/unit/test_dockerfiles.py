"""The container images' Dockerfiles, checked without a Docker engine: what they copy exists in the
build context, they run what localinfra runs, install the serving extras only, as a non-root user,
from pinned base images, and make the model repository as the Makefile does."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from captioning_common.settings import TritonSettings
from localinfra.dependency_closure import project_requirements
from localinfra.dockerfiles import Dockerfile, DockerIgnore, Stage, parse
from localinfra.pipeline import SERVICE_NAMES, PipelineService
from localinfra.serving_check import service_modules
from localinfra.serving_env import ENVIRONMENTS
from localinfra.settings import InfraConfig, LocalInfraSettings
from localinfra.triton import PYTRITON_VERSION, Triton

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
IMAGES = {"services": "services.Dockerfile", "triton": "triton.Dockerfile"}
# The NGC release of the Triton that each nvidia-pytriton wheel ships (0.7.0: Triton 2.51.0).
NGC_RELEASE = {"0.7.0": "24.10"}


@pytest.fixture(scope="module")
def dockerfiles() -> dict[str, Dockerfile]:
    return {image: parse(DOCKER / name) for image, name in IMAGES.items()}


@pytest.fixture(scope="module")
def context_files() -> list[str]:
    """The files a commit of this checkout holds (tracked, and untracked but not git-ignored), minus .dockerignore's."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    ignore = DockerIgnore.read(ROOT / ".dockerignore")
    return [path for path in listed if (ROOT / path).is_file() and not ignore.excluded(path)]


def _runs(stage: Stage) -> str:
    return "\n".join(" ".join(instruction.arguments.split()) for instruction in stage.of("RUN"))


def _venv_stage(dockerfile: Dockerfile) -> Stage:
    """The stage whose /opt/venv the final stage copies."""
    (copy,) = [c for c in dockerfile.final.of("COPY") if c.words()[0] == "/opt/venv"]
    return dockerfile.stage(copy.flag("from"))


def test_every_copy_source_is_in_the_build_context(dockerfiles, context_files) -> None:
    for image, dockerfile in dockerfiles.items():
        for stage in dockerfile.stages:
            for copy in stage.of("COPY") + stage.of("ADD"):
                if copy.flag("from"):
                    continue
                for source in copy.words()[:-1]:
                    pattern = source.rstrip("/")
                    found = [f for f in context_files if fnmatch.fnmatch(f, pattern) or f.startswith(pattern + "/")]
                    assert found, f"{image}: line {copy.line} copies {source}, which the build context does not hold"


def test_stages_copied_or_mounted_from_are_defined_before(dockerfiles) -> None:
    for image, dockerfile in dockerfiles.items():
        defined: set[str] = set()
        for stage in dockerfile.stages:
            for instruction in stage.instructions:
                sources = [instruction.flag("from")] if instruction.keyword == "COPY" else []
                sources += [m for mount in instruction.flag_values("mount") for m in re.findall(r"from=([\w-]+)", mount)]
                for source in filter(None, sources):
                    assert source in defined, f"{image}: line {instruction.line} uses stage {source} before it is defined"
            if stage.name:
                defined.add(stage.name)


def test_dockerignore_keeps_local_and_generated_files_out() -> None:
    ignore = DockerIgnore.read(ROOT / ".dockerignore")
    for path in (".venv/bin/python", ".local/tesseract/tree/usr/bin/tesseract", ".git/HEAD", "data/scenes/train.json",
                 "reports/serving_env.json", "libs/captioning_events/v1/envelope_pb2.py", "libs/perception/__pycache__/x.pyc",
                 "model_repository/classifier/1/model.onnx", "model_repository/scene_captioner/1/student/captioner.json",
                 "model_repository/captioner/2/scene_world.npz", "model_repository/detector/1/.prepared-detector.json",
                 "services/moderation/profanity_model.npz", "helm/captioning/Chart.yaml", "tests/unit/test_dockerfiles.py"):
        assert ignore.excluded(path), path
    for path in ("pyproject.toml", "README.md", "libs/perception/serving.py", "services/moderation/profanity.py",
                 "deploy/localinfra/serving_check.py", "models/student/model.safetensors",
                 "model_repository/classifier/config.pbtxt", "model_repository/text_reader/configs/gpu.pbtxt"):
        assert not ignore.excluded(path), path


def test_dockerignore_matching_follows_the_docker_engine() -> None:
    ignore = DockerIgnore("*\n!keep\nkeep/**/*.tmp\n!keep/important.tmp\n")
    assert ignore.excluded("other/file.py") and ignore.excluded("top.py")
    assert not ignore.excluded("keep/a/b.py")  # re-included through its parent folder
    assert ignore.excluded("keep/a/b.tmp") and ignore.excluded("keep/b.tmp")  # ** spans zero or more folders
    assert not ignore.excluded("keep/important.tmp")  # the last matching rule wins


def test_services_image_runs_each_service_as_localinfra_does(dockerfiles, tmp_path) -> None:
    dockerfile = dockerfiles["services"]
    (cmd,) = dockerfile.final.of("CMD")
    image_command = cmd.exec_form()
    config = InfraConfig(local=LocalInfraSettings(state_dir=tmp_path))  # generated local secrets land here
    local_command, _ = PipelineService(config, "ingest").command()
    assert image_command[0] == "python" and Path(local_command[0]).name.startswith("python")
    assert image_command[1:] == local_command[1:] == ["-m", "services.ingest"]
    env = " ".join(instruction.arguments for instruction in dockerfile.final.of("ENV"))
    assert "PATH=/opt/venv/bin:" in env  # `python` is the serving environment's
    modules = service_modules()
    assert {f"services.{name}.__main__" for name in SERVICE_NAMES} <= set(modules)
    for module in modules:  # every service the image can run is in the package it installs
        assert (ROOT / Path(*module.split(".")).with_suffix(".py")).is_file()


def _flags(arguments: list[str]) -> dict[str, str]:
    return dict(argument.removeprefix("--").split("=", 1) for argument in arguments if argument.startswith("--"))


def test_triton_image_runs_the_server_as_localinfra_does(dockerfiles, tmp_path) -> None:
    (entrypoint,) = dockerfiles["triton"].final.of("ENTRYPOINT")
    words = entrypoint.exec_form()
    image = _flags(words[words.index("tritonserver") + 1 :])
    local_command, _ = Triton(InfraConfig(local=LocalInfraSettings(state_dir=tmp_path), triton=TritonSettings())).command()
    local = _flags(local_command[1:])
    assert set(image) == set(local) - {"model-config-name"}  # the GPU config is chosen by an argument
    in_the_image = {"model-repository": "/models", "backend-directory": "/opt/tritonserver/backends",
                    "cache-directory": "/opt/tritonserver/caches", "allow-gpu-metrics": "true",
                    "http-address": "0.0.0.0", "grpc-address": "0.0.0.0", "metrics-address": "0.0.0.0"}
    defaults = {name: field.default for name, field in TritonSettings.model_fields.items()}
    ports = {"http-port": defaults["http_url"], "grpc-port": defaults["grpc_url"], "metrics-port": defaults["metrics_url"]}
    for flag, value in image.items():
        if flag in in_the_image:
            assert value == in_the_image[flag], flag
        elif flag in ports:
            assert re.search(rf":{value}\b", ports[flag]), f"{flag}={value} is not the services' default ({ports[flag]})"
        else:
            assert value == local[flag], f"--{flag}: {value} in the image, {local[flag]} locally"


@pytest.mark.parametrize("image", IMAGES)
def test_final_stages_install_the_serving_environment_only(dockerfiles, image) -> None:
    dockerfile = dockerfiles[image]
    (environment,) = [e for e in ENVIRONMENTS if e.image == image]
    venv = _venv_stage(dockerfile)
    installs = re.findall(r"captioning_pipeline-\*\.whl\)?\[([\w,-]*)\]", _runs(venv))
    assert installs == [",".join(environment.extras)], installs  # what `make serving-env` builds and measures
    for stage in (venv, dockerfile.final):
        extras = {extra for group in re.findall(r"\[([\w,-]*)\]", _runs(stage)) for extra in group.split(",")}
        assert not extras & {"model", "dev"}, extras
    assert "pip install" not in _runs(dockerfile.final)
    # The environment's modules (and, for Triton, the models') import during the build.
    assert "python -m localinfra.serving_check" in _runs(dockerfile.final)


@pytest.mark.parametrize("image", IMAGES)
def test_final_stages_have_no_build_tools_apt_lists_or_pip_cache(dockerfiles, image) -> None:
    dockerfile = dockerfiles[image]
    inherited = [dockerfile.final]
    names = {stage.name: stage for stage in dockerfile.stages if stage.name}
    while inherited[-1].base in names:  # the stages the final image is built on
        inherited.append(names[inherited[-1].base])
    for stage in inherited:
        for run in stage.of("RUN"):
            text = " ".join(run.arguments.split())
            assert not re.search(r"apt-get install[^&]*\b(gcc|g\+\+|make|build-essential|binutils|python3\.\d+-dev)\b", text), text
            if "apt-get install" in text:
                assert "rm -rf /var/lib/apt/lists/*" in text, text
    for stage in dockerfile.stages:
        built_on = [stage]
        while built_on[-1].base in names:
            built_on.append(names[built_on[-1].base])
        pip_cache_set = any("PIP_CACHE_DIR=/var/cache/pip" in env.arguments.split() for base in built_on for env in base.of("ENV"))
        for run in stage.of("RUN"):
            if re.search(r"\bpip (install|wheel|download)", run.arguments):
                mounts = run.flag_values("mount")
                cached = (pip_cache_set and any("target=/var/cache/pip" in mount for mount in mounts)) or "--no-cache-dir" in run.arguments
                assert cached, f"{image}: line {run.line} would leave pip's cache in a layer"


@pytest.mark.parametrize("image", IMAGES)
def test_final_stages_run_as_a_numeric_non_root_user(dockerfiles, image) -> None:
    users = dockerfiles[image].final.of("USER")
    assert users, f"{image} runs as root"
    uid, _, gid = users[-1].arguments.partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit())


def test_base_images_are_pinned(dockerfiles) -> None:
    for image, dockerfile in dockerfiles.items():
        for base in dockerfile.external_bases():
            name, _, tag = base.partition("@")[0].rpartition(":")
            assert name and re.search(r"\d+\.\d+", tag) and tag != "latest", f"{image}: {base} is not pinned to a version"
    python = {base for d in dockerfiles.values() for base in d.external_bases() if base.startswith("python:")}
    assert len(python) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", python.pop())  # the Debian the builder's Tesseract needs
    triton = dockerfiles["triton"]
    assert triton.arguments["PYTRITON_VERSION"] == PYTRITON_VERSION  # the stub of the same wheel localinfra unpacks
    assert triton.base_image() == f"nvcr.io/nvidia/tritonserver:{NGC_RELEASE[PYTRITON_VERSION]}-py3"


def _recipe(makefile: str, target: str) -> list[str]:
    lines = makefile.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_builder_stages_make_what_the_makefile_makes(dockerfiles) -> None:
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^([A-Z_]+)\s*:=\s*(.*)$", makefile, flags=re.MULTILINE))
    variables |= {"PY": "python", "PROTOS": "protos/captioning_events/v1/*.proto"}

    def expand(line: str) -> str:
        line = re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], line)
        return " ".join(line.replace("python -m pip ", "pip ").split())

    protoc = [expand(line) for line in _recipe(makefile, "$(GENERATED)") if "protoc" in line]
    install = [expand(line) for line in _recipe(makefile, "$(STAMP)") if "pip install" in line]
    export = [expand(line) for line in _recipe(makefile, "$(EXPORTED)")]
    prepare = [expand(line) for line in _recipe(makefile, "model-repository")]
    profanity = [expand(line) for line in _recipe(makefile, "$(PROFANITY)")]
    assert len(protoc) == len(install) == len(export) == len(prepare) == len(profanity) == 1
    for image, dockerfile in dockerfiles.items():
        assert protoc[0] in _runs(dockerfile.stage("wheel")), image
    assert profanity[0] in _runs(dockerfiles["services"].stage("profanity"))
    models = _runs(dockerfiles["triton"].stage("models"))
    for command in (install[0], export[0], prepare[0]):
        assert command in models
    assert models.index(export[0]) < models.index(prepare[0])  # $(EXPORTED) is a prerequisite of model-repository


def test_services_image_packages_the_profanity_model_exported_from_the_pinned_package(dockerfiles) -> None:
    dockerfile = dockerfiles["services"]
    builder, wheel = dockerfile.stage("profanity"), dockerfile.stage("wheel")
    # The builder installs the versions pyproject.toml pins (the `model` extra's, numpy of the core).
    pins = {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, project_requirements(ROOT / "pyproject.toml", ["model"]))}
    (install,) = [run for run in _runs(builder).splitlines() if "pip install" in run]
    installed = {canonicalize_name(name): f"=={version}" for name, version in re.findall(r"([\w.-]+)==([\w.]+)", install)}
    assert set(installed) == {"alt-profanity-check", "scikit-learn", "joblib", "numpy"}
    assert installed == {name: pins[name] for name in installed}
    # It exports next to its copy of profanity.py; the wheel stage copies the file into the package before building.
    file = "services/moderation/profanity_model.npz"
    (workdir,) = builder.of("WORKDIR")
    assert [c.words() for c in builder.of("COPY")] == [["services/moderation/profanity.py", "services/moderation/profanity.py"]]
    (copy,) = [c for c in wheel.of("COPY") if c.flag("from") == "profanity"]
    assert copy.words() == [f"{workdir.arguments}/{file}", file]
    (build,) = [run for run in wheel.of("RUN") if "pip wheel" in run.arguments]
    assert copy.line < build.line
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert package_data["services.moderation"] == [Path(file).name]
    # The image loads it at build time, as `make serving-env` does; scikit-learn stays in the builder.
    (environment,) = [e for e in ENVIRONMENTS if e.image == "services"]
    assert ("services.moderation.profanity", "check") in environment.checks
    for check in environment.checks:
        assert f"python -m {' '.join(check)}" in _runs(dockerfile.final), check
    assert all(copy.flag("from") != "profanity" for copy in dockerfile.final.of("COPY"))


def test_what_the_triton_image_relies_on_in_the_model_configs_is_there(dockerfiles) -> None:
    text = (DOCKER / "triton.Dockerfile").read_text()
    tesseract = 'key: "tesseract_dir", value: { string_value: "" }'  # rewritten to the image's /opt/tesseract
    assert tesseract in text
    for config in ("config.pbtxt", "configs/gpu.pbtxt"):
        assert tesseract in (ROOT / "model_repository" / "text_reader" / config).read_text()
    # Each GPU config keeps TensorRT engines in <version>/trt_cache, which the image makes writable for its user.
    cache = 'key: "tensorrt_cache_dir", value: { string_value: "trt_cache" }'
    user = dockerfiles["triton"].final.of("USER")[-1].arguments
    final = _runs(dockerfiles["triton"].final)
    assert cache in final and f"install -d -o {user.replace(':', ' -g ')}" in final
    gpu_configs = sorted((ROOT / "model_repository").glob("*/configs/gpu.pbtxt"))
    assert gpu_configs
    for config in gpu_configs:
        content = config.read_text()
        if "tensorrt_cache_dir" in content:
            assert cache in content, config
