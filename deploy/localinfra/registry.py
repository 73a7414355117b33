"""The local components in start order: the servers, the pipeline services, the web console, then Prometheus scraping them."""

from __future__ import annotations

from localinfra.components import Component
from localinfra.kafka import Kafka
from localinfra.pipeline import CONSOLE, SERVICE_NAMES, PipelineService
from localinfra.prometheus import Prometheus
from localinfra.s3 import S3Server
from localinfra.settings import InfraConfig
from localinfra.triton import Triton

_CLASSES: dict[str, type[Component]] = {"kafka": Kafka, "s3": S3Server, "triton": Triton, "prometheus": Prometheus}
SERVER_NAMES = ("kafka", "s3", "triton")
COMPONENT_NAMES = SERVER_NAMES + SERVICE_NAMES + (CONSOLE, "prometheus")


def components(config: InfraConfig, names: list[str] | None = None) -> list[Component]:
    """Component objects for ``names`` (all by default), in start order; ValueError on an unknown name."""
    wanted = names or list(COMPONENT_NAMES)
    unknown = sorted(set(wanted) - set(COMPONENT_NAMES))
    if unknown:
        raise ValueError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENT_NAMES)}")
    return [_CLASSES[name](config) if name in _CLASSES else PipelineService(config, name) for name in COMPONENT_NAMES if name in wanted]


def start_missing(config: InfraConfig) -> list[Component]:
    """Install and start every component not running yet, provision all; returns the ones it started, in start order.

    Stopping exactly those (in reverse) leaves whatever was already running as it was;
    when a start fails, the ones started before it are stopped again.
    """
    started: list[Component] = []
    try:
        for component in components(config):
            if component.process.pid() is None and not component.healthy():
                if not component.installed():
                    print(f"{component.name}: installing (first run)...", flush=True)
                    component.install()
                started.append(component)
            component.start()
            component.provision()
            print(f"{component.name}: ready", flush=True)
    except BaseException:
        for component in reversed(started):
            component.stop()
        raise
    return started
