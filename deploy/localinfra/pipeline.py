"""The four pipeline services and the web console as local background processes, next to the servers they use.

Each runs ``python -m services.<name>`` on the project's interpreter with the
environment of the command that started it. Each secret that is not set is
generated once into the state dir (mode 0600) and given to every service:
``CAPTIONING_API_KEYS`` (``api-key``), ``CAPTIONING_REVIEWER_KEYS`` (reviewer
``local-reviewer`` with the key in ``reviewer-key``),
``CAPTIONING_REVIEW_SIGNING_KEY`` (``review-signing-key``) and ``CAPTIONING_OPERATOR_KEYS``
(operator ``local-operator`` with the key in ``operator-key``). The web console
(``services.console``) runs the same way, after the stages.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from captioning_common.reviews import parse_reviewer_keys
from localinfra.components import Component
from localinfra.process import answers_ok
from localinfra.settings import InfraConfig
from services.caption.settings import CaptionSettings
from services.console.settings import ConsoleSettings
from services.indexing.settings import IndexingSettings
from services.ingest.settings import IngestSettings
from services.moderation.settings import ModerationSettings

_PORTS = {
    "ingest": lambda: IngestSettings().port,
    "caption": lambda: CaptionSettings().port,
    "moderation": lambda: ModerationSettings().port,
    "indexing": lambda: IndexingSettings().port,
    "console": lambda: ConsoleSettings().port,
}
SERVICE_NAMES = ("ingest", "caption", "moderation", "indexing")  # the pipeline's stages
CONSOLE = "console"  # the web console, started after the stages
LOCAL_REVIEWER = "local-reviewer"
LOCAL_OPERATOR = "local-operator"


def api_key_file(config: InfraConfig) -> Path:
    """Where the generated local API key is kept."""
    return config.state_dir / "api-key"


def local_api_key(config: InfraConfig) -> str:
    """``CAPTIONING_API_KEYS``'s first key, or the generated local key (created on first use)."""
    configured = [key.strip() for key in os.environ.get("CAPTIONING_API_KEYS", "").split(",") if key.strip()]
    if configured:
        return configured[0]
    return _generated_secret(api_key_file(config))


def reviewer_key_file(config: InfraConfig) -> Path:
    """Where the generated key of the local reviewer is kept."""
    return config.state_dir / "reviewer-key"


def local_reviewer_key(config: InfraConfig) -> str:
    """The key of ``CAPTIONING_REVIEWER_KEYS``'s first reviewer, or the generated key of ``local-reviewer``."""
    configured = parse_reviewer_keys(os.environ.get("CAPTIONING_REVIEWER_KEYS", ""))
    return next(iter(configured)) if configured else _generated_secret(reviewer_key_file(config))


def local_review_env(config: InfraConfig) -> dict[str, str]:
    """The generated reviewer key and review signing key, for each of the two variables that is not set."""
    env = {}
    if not os.environ.get("CAPTIONING_REVIEWER_KEYS", "").strip():
        env["CAPTIONING_REVIEWER_KEYS"] = f"{LOCAL_REVIEWER}={local_reviewer_key(config)}"
    if not os.environ.get("CAPTIONING_REVIEW_SIGNING_KEY", "").strip():
        env["CAPTIONING_REVIEW_SIGNING_KEY"] = _generated_secret(config.state_dir / "review-signing-key")
    return env


def operator_key_file(config: InfraConfig) -> Path:
    """Where the generated key of the local operator is kept."""
    return config.state_dir / "operator-key"


def local_operator_env(config: InfraConfig) -> dict[str, str]:
    """``CAPTIONING_OPERATOR_KEYS`` with the generated key of ``local-operator``, when the variable is not set."""
    if os.environ.get("CAPTIONING_OPERATOR_KEYS", "").strip():
        return {}
    return {"CAPTIONING_OPERATOR_KEYS": f"{LOCAL_OPERATOR}={_generated_secret(operator_key_file(config))}"}


def _generated_secret(path: Path) -> str:
    """The random secret kept in ``path``, created (mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


class PipelineService(Component):
    """One of ingest, caption, moderation, indexing; healthy when its /readyz answers 200."""

    def __init__(
        self, config: InfraConfig, name: str, env: dict[str, str] | None = None, instance: str | None = None, replica: int = 0
    ) -> None:
        """``replica`` r > 0 is another member of the same consumer group: instance ``<instance>-<r>``
        (own pid, log and home) on port + r x ``CAPTIONING_LOCAL_REPLICA_PORT_OFFSET``."""
        self.name = name
        self.replica = replica
        base = instance or name
        super().__init__(config, f"{base}-{replica}" if replica else base)
        self.extra_env = env or {}

    @property
    def port(self) -> int:
        """The service's HTTP port (its API, or /metrics, /healthz and /readyz)."""
        port_variable = f"CAPTIONING_{self.name.upper()}_PORT"
        base = int(self.extra_env[port_variable]) if port_variable in self.extra_env else _PORTS[self.name]()
        return base + self.replica * self.config.local.replica_port_offset

    def installed(self) -> bool:
        return True  # installed with the project's Python package

    def install(self) -> None:
        return None

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = {
            "CAPTIONING_API_KEYS": local_api_key(self.config), **local_review_env(self.config), **local_operator_env(self.config), "PYTHONUNBUFFERED": "1",
        } | self.extra_env
        if self.replica:
            env[f"CAPTIONING_{self.name.upper()}_PORT"] = str(self.port)
        env.setdefault("CAPTIONING_KAFKA_CLIENT_ID", self.instance)  # tells the replicas apart in the group's view
        return [sys.executable, "-m", f"services.{self.name}"], env

    def start(self) -> float:
        self.home.mkdir(parents=True, exist_ok=True)
        return super().start()

    def healthy(self) -> bool:
        return answers_ok(f"http://127.0.0.1:{self.port}/readyz")

    def provision(self) -> str:
        if self.name == CONSOLE:
            keys = ", ".join(str(path(self.config)) for path in (api_key_file, reviewer_key_file, operator_key_file))
            return f"web console on http://127.0.0.1:{self.port} (sign in with a key: {keys}, unless the variables are set)"
        if self.name in ("ingest", "indexing"):
            keys = f"key in {api_key_file(self.config)} unless CAPTIONING_API_KEYS is set"
            if self.name == "ingest":
                keys += f"; reviewer key in {reviewer_key_file(self.config)} unless CAPTIONING_REVIEWER_KEYS is set"
            return f"API on http://127.0.0.1:{self.port} ({keys})"
        return f"metrics on http://127.0.0.1:{self.port}/metrics"
