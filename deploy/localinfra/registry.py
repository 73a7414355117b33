"""The local components in start order: the servers, then the pipeline services."""

from __future__ import annotations

from localinfra.components import Component
from localinfra.kafka import Kafka
from localinfra.pipeline import SERVICE_NAMES, PipelineService
from localinfra.s3 import S3Server
from localinfra.settings import InfraConfig
from localinfra.triton import Triton

_CLASSES: dict[str, type[Component]] = {"kafka": Kafka, "s3": S3Server, "triton": Triton}
SERVER_NAMES = tuple(_CLASSES)
COMPONENT_NAMES = SERVER_NAMES + SERVICE_NAMES


def components(config: InfraConfig, names: list[str] | None = None) -> list[Component]:
    """Component objects for ``names`` (all by default), in start order; ValueError on an unknown name."""
    wanted = names or list(COMPONENT_NAMES)
    unknown = sorted(set(wanted) - set(COMPONENT_NAMES))
    if unknown:
        raise ValueError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENT_NAMES)}")
    return [_CLASSES[name](config) if name in _CLASSES else PipelineService(config, name) for name in COMPONENT_NAMES if name in wanted]
