"""The four pipeline services as local background processes, next to the servers they use.

Each runs ``python -m services.<name>`` on the project's interpreter with the
environment of the command that started it. When ``CAPTIONING_API_KEYS`` is not
set, a random key is generated once into ``<state dir>/api-key`` (mode 0600) and
given to the ingest and search APIs.
"""

from __future__ import annotations

import os
import secrets
import sys
import urllib.request
from pathlib import Path

from localinfra.components import Component
from localinfra.settings import InfraConfig
from services.caption.settings import CaptionSettings
from services.indexing.settings import IndexingSettings
from services.ingest.settings import IngestSettings
from services.moderation.settings import ModerationSettings

_PORTS = {
    "ingest": lambda: IngestSettings().port,
    "caption": lambda: CaptionSettings().port,
    "moderation": lambda: ModerationSettings().port,
    "indexing": lambda: IndexingSettings().port,
}
SERVICE_NAMES = tuple(_PORTS)


def api_key_file(config: InfraConfig) -> Path:
    """Where the generated local API key is kept."""
    return config.state_dir / "api-key"


def local_api_key(config: InfraConfig) -> str:
    """``CAPTIONING_API_KEYS``'s first key, or the generated local key (created on first use)."""
    configured = [key.strip() for key in os.environ.get("CAPTIONING_API_KEYS", "").split(",") if key.strip()]
    if configured:
        return configured[0]
    path = api_key_file(config)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


class PipelineService(Component):
    """One of ingest, caption, moderation, indexing; healthy when its /readyz answers 200."""

    def __init__(self, config: InfraConfig, name: str, env: dict[str, str] | None = None, instance: str | None = None) -> None:
        self.name = name
        super().__init__(config, instance)
        self.extra_env = env or {}

    @property
    def port(self) -> int:
        """The service's HTTP port (its API, or /metrics, /healthz and /readyz)."""
        port_variable = f"CAPTIONING_{self.name.upper()}_PORT"
        if port_variable in self.extra_env:
            return int(self.extra_env[port_variable])
        return _PORTS[self.name]()

    def installed(self) -> bool:
        return True  # installed with the project's Python package

    def install(self) -> None:
        return None

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = {"CAPTIONING_API_KEYS": local_api_key(self.config), "PYTHONUNBUFFERED": "1"} | self.extra_env
        return [sys.executable, "-m", f"services.{self.name}"], env

    def start(self) -> float:
        self.home.mkdir(parents=True, exist_ok=True)
        return super().start()

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def provision(self) -> str:
        if self.name in ("ingest", "indexing"):
            return f"API on http://127.0.0.1:{self.port} (key in {api_key_file(self.config)} unless CAPTIONING_API_KEYS is set)"
        return f"metrics on http://127.0.0.1:{self.port}/metrics"
