"""The local components in start order."""

from __future__ import annotations

from localinfra.components import Component
from localinfra.kafka import Kafka
from localinfra.s3 import S3Server
from localinfra.settings import InfraConfig
from localinfra.triton import Triton

_CLASSES: dict[str, type[Component]] = {"kafka": Kafka, "s3": S3Server, "triton": Triton}
COMPONENT_NAMES = tuple(_CLASSES)


def components(config: InfraConfig, names: list[str] | None = None) -> list[Component]:
    """Component objects for ``names`` (all by default), in start order; ValueError on an unknown name."""
    wanted = names or list(COMPONENT_NAMES)
    unknown = sorted(set(wanted) - set(COMPONENT_NAMES))
    if unknown:
        raise ValueError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENT_NAMES)}")
    return [cls(config) for name, cls in _CLASSES.items() if name in wanted]
