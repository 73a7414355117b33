# syntax=docker/dockerfile:1
# Triton Inference Server 2.51 (NGC release 24.10: the server `python -m localinfra up` runs from the
# nvidia-pytriton 0.7.0 wheel) serving the prepared model repository from /models.
# Build from the repository root:
#   docker build -f deploy/docker/triton.Dockerfile -t captioning/triton .
# GPU nodes: add `--model-config-name=gpu` to the container's arguments (configs/gpu.pbtxt of each model).
#
# The python-backend models run on Python 3.11 (the project's; NGC 24.10 ships 3.10) from the
# deadsnakes archive for Ubuntu 22.04, with the stub built for 3.11 taken from the same
# nvidia-pytriton wheel localinfra uses, and the core dependencies with the `triton` extra (no torch).
# The model repository is prepared in a builder stage as `make model-repository` does: the
# student exported from models/student, the pretrained models built from pinned packages.
#
# Base images are pinned by tag. To pin them by digest too, resolve each tag once
# (`docker buildx imagetools inspect nvcr.io/nvidia/tritonserver:24.10-py3`) and pass
#   --build-arg TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3@sha256:<digest>
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG PYTRITON_VERSION=0.7.0
# Launchpad's signing key of the deadsnakes archive (ppa:deadsnakes/ppa).
ARG DEADSNAKES_KEY=F23C5A6CF475977595C89F51BA6932366A755776

# --- The project wheel, with the event code generated from protos/ as `make protos` does.
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_CACHE_DIR=/var/cache/pip
WORKDIR /src
RUN --mount=type=cache,target=/var/cache/pip \
    pip install -q pip==25.3 grpcio-tools==1.81.1 protobuf==6.33.6
COPY pyproject.toml README.md ./
COPY protos protos
COPY libs libs
COPY services services
COPY deploy/localinfra deploy/localinfra
RUN --mount=type=cache,target=/var/cache/pip \
    python -m grpc_tools.protoc -Iprotos --python_out=libs --pyi_out=libs protos/captioning_events/v1/*.proto \
 && pip wheel -q --no-deps --wheel-dir /wheels .

# --- The model repository, made as `make model-repository` makes it (with what `make install`
# installs): the student exported to ONNX, then `python -m perception prepare` (classifier,
# detector, router, text reader, and Tesseract unpacked from Debian's packages into .local/).
FROM wheel AS models
RUN --mount=type=cache,target=/var/cache/pip \
    pip install -q -e '.[dev,model,services,nudenet,triton]'
COPY models/student models/student
COPY model_repository model_repository
RUN python -m captioner export models/student --out model_repository/scene_captioner/1/student --int8 model_repository/scene_captioner/1/student-int8 --name captioner-student \
 && python -m perception prepare
# Tesseract goes to /opt/tesseract in the image. Its libarchive is Debian 12's, which needs
# glibc 2.36; Ubuntu 22.04's own libarchive13 (the same ABI) replaces it in the final stage.
RUN sed -i 's|key: "tesseract_dir", value: { string_value: "" }|key: "tesseract_dir", value: { string_value: "/opt/tesseract" }|' \
        model_repository/text_reader/config.pbtxt model_repository/text_reader/configs/gpu.pbtxt \
 && grep -q '"/opt/tesseract"' model_repository/text_reader/config.pbtxt \
 && grep -q '"/opt/tesseract"' model_repository/text_reader/configs/gpu.pbtxt \
 && rm -f .local/tesseract/tree/usr/lib/x86_64-linux-gnu/libarchive.so.13*

# --- Launchpad's key of the deadsnakes archive, checked against its fingerprint.
FROM ${PYTHON_IMAGE} AS deadsnakes-key
ARG DEADSNAKES_KEY
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnupg >/dev/null \
 && python -c "import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=60).read())" \
        "https://keyserver.ubuntu.com/pks/lookup?op=get&options=mr&search=0x${DEADSNAKES_KEY}" > /tmp/key.asc \
 && gpg --batch --show-keys --with-colons /tmp/key.asc \
    | awk -F: '$1 == "pub" {keys++} $1 == "fpr" && !primary {primary = $10} END {exit !(keys == 1 && primary == ENVIRON["DEADSNAKES_KEY"])}' \
 && gpg --batch --dearmor < /tmp/key.asc > /deadsnakes.gpg

# --- NVIDIA's Triton with Python 3.11, its shared library (the stub links it) and libarchive.
FROM ${TRITON_IMAGE} AS python
COPY --from=deadsnakes-key /deadsnakes.gpg /etc/apt/keyrings/deadsnakes.gpg
RUN . /etc/os-release \
 && echo "deb [signed-by=/etc/apt/keyrings/deadsnakes.gpg] http://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu $VERSION_CODENAME main" \
        > /etc/apt/sources.list.d/deadsnakes.list \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3.11 libpython3.11 libarchive13 >/dev/null \
 && rm -rf /var/lib/apt/lists/*

# --- The python backend's environment in /opt/venv: the core dependencies and the `triton` extra,
# binary wheels only, the debug sections of its shared libraries stripped.
FROM python AS venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_CACHE_DIR=/var/cache/pip
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3.11-venv binutils >/dev/null \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/var/cache/pip \
    --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    python3.11 -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install -q pip==25.3 \
 && /opt/venv/bin/python -m pip install -q --only-binary=:all: "$(ls /wheels/captioning_pipeline-*.whl)[triton]" \
 && /opt/venv/bin/python -m pip uninstall -q -y pip setuptools \
 && find /opt/venv -type f \( -name '*.so' -o -name '*.so.[0-9]*' \) -exec strip --strip-debug {} +

# --- The python backend stub built for Python 3.11 and Triton 2.51, from the nvidia-pytriton wheel.
FROM ${PYTHON_IMAGE} AS stub
ENV PIP_CACHE_DIR=/var/cache/pip
ARG PYTRITON_VERSION
RUN --mount=type=cache,target=/var/cache/pip \
    pip download -q --no-deps --only-binary=:all: --dest /tmp/pytriton "nvidia-pytriton==${PYTRITON_VERSION}" \
 && python -m zipfile -e /tmp/pytriton/nvidia_pytriton-*.whl /tmp/pytriton/wheel \
 && install -m 0755 /tmp/pytriton/wheel/pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub /triton_python_backend_stub

# --- Runtime. The stub embeds the first `python3` on PATH (the venv's), so models import the project.
FROM python
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=stub /triton_python_backend_stub /opt/tritonserver/backends/python/triton_python_backend_stub
COPY --from=venv /opt/venv /opt/venv
COPY --from=models /src/.local/tesseract /opt/tesseract
COPY --from=models /src/model_repository /models
# The GPU configs keep their TensorRT engines in <model>/<version>/trt_cache: writable by the
# server's user (a volume may be mounted there). Then what the models import must load here
# without torch, and Tesseract must run on this system, or the build fails.
RUN for config in /models/*/configs/gpu.pbtxt; do \
        if grep -q 'key: "tensorrt_cache_dir", value: { string_value: "trt_cache" }' "$config"; then \
            for version in "$(dirname "$(dirname "$config")")"/[0-9]*/; do install -d -o 1000 -g 1000 "${version}trt_cache"; done; \
        fi; \
    done \
 && python -m localinfra.serving_check models /models --tesseract /opt/tesseract
# triton-server, the unprivileged user of NVIDIA's image.
USER 1000:1000
WORKDIR /tmp
# HTTP/REST 8000 (/v2/health/live, /v2/health/ready), gRPC 8001, Prometheus metrics 8002.
EXPOSE 8000 8001 8002
ENTRYPOINT ["/opt/nvidia/nvidia_entrypoint.sh", "tritonserver", \
    "--model-repository=/models", \
    "--backend-directory=/opt/tritonserver/backends", \
    "--cache-directory=/opt/tritonserver/caches", \
    "--http-address=0.0.0.0", "--http-port=8000", \
    "--grpc-address=0.0.0.0", "--grpc-port=8001", \
    "--metrics-address=0.0.0.0", "--metrics-port=8002", \
    "--allow-metrics=true", "--allow-gpu-metrics=true", "--allow-cpu-metrics=true", \
    "--strict-readiness=true", "--exit-on-error=true", "--exit-timeout-secs=15", \
    "--model-control-mode=none", \
    "--log-verbose=0"]
