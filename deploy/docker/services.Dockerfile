# syntax=docker/dockerfile:1
# The pipeline services in one image; the command picks the service, as `python -m localinfra up` runs them:
#   python -m services.ingest | services.caption | services.moderation | services.indexing | services.console
# Build from the repository root:
#   docker build -f deploy/docker/services.Dockerfile -t captioning/services .
# The Python it installs is the serving environment `make serving-env` builds and measures:
# the core dependencies with the `services` and `nudenet` extras, binary wheels only
# (kiwipiepy-model, a data package, is published as a source archive only), no torch.
#
# Base images are pinned by tag. To pin them by digest too, resolve the tag once
# (`docker buildx imagetools inspect python:3.11.13-slim-bookworm`) and pass
#   --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- The moderation's profanity model, exported from alt-profanity-check with the pins of the
# `model` extra, as `make model-repository` does; scikit-learn stays in this stage.
FROM ${PYTHON_IMAGE} AS profanity
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_CACHE_DIR=/var/cache/pip
WORKDIR /src
RUN --mount=type=cache,target=/var/cache/pip \
    pip install -q alt-profanity-check==1.9.1 scikit-learn==1.9.1 joblib==1.6.0 numpy==1.26.4
COPY services/moderation/profanity.py services/moderation/profanity.py
RUN python -m services.moderation.profanity export

# --- The project wheel, with the event code generated from protos/ as `make protos` does,
# and the profanity model as package data of services.moderation.
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_CACHE_DIR=/var/cache/pip
WORKDIR /src
RUN --mount=type=cache,target=/var/cache/pip \
    pip install -q pip==25.3 grpcio-tools==1.81.1 protobuf==6.33.6
COPY pyproject.toml README.md ./
COPY protos protos
COPY libs libs
COPY services services
COPY --from=profanity /src/services/moderation/profanity_model.npz services/moderation/profanity_model.npz
COPY deploy/localinfra deploy/localinfra
RUN --mount=type=cache,target=/var/cache/pip \
    python -m grpc_tools.protoc -Iprotos --python_out=libs --pyi_out=libs protos/captioning_events/v1/*.proto \
 && pip wheel -q --no-deps --wheel-dir /wheels .

# --- The serving environment in /opt/venv (pip runs from outside it, so the venv holds none),
# the debug sections of its shared libraries stripped (symbols and code stay).
FROM ${PYTHON_IMAGE} AS venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_CACHE_DIR=/var/cache/pip
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/var/cache/pip \
    --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install -q pip==25.3 \
 && python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install -q --only-binary=:all: --no-binary=kiwipiepy-model \
        "$(ls /wheels/captioning_pipeline-*.whl)[services,nudenet]" \
 && find /opt/venv -type f \( -name '*.so' -o -name '*.so.[0-9]*' \) -exec strip --strip-debug {} +

# --- Runtime: the base image and the environment; no compiler, no pip cache, no sources.
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 captioning \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin captioning
COPY --from=venv /opt/venv /opt/venv
# Every service imports here, without torch, and the profanity model loads: a broken environment
# fails the build, not the pod.
RUN python -m localinfra.serving_check services \
 && python -m services.moderation.profanity check
USER 10001:10001
WORKDIR /tmp
# ingest 8080, indexing (search) 8081, console 8082, caption 9401, moderation 9402;
# each also serves /metrics, /healthz and /readyz on its port.
EXPOSE 8080 8081 8082 9401 9402
CMD ["python", "-m", "services.ingest"]
