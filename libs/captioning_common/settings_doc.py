"""Print the markdown table of every setting, as the README carries it.

``python -m captioning_common.settings_doc`` - a test keeps the README equal to it.
"""

from __future__ import annotations

import importlib
import sys

from pydantic import SecretStr
from pydantic_settings import BaseSettings

# The settings classes the deployed services read ("module:Class"), in README order.
SERVICE_SETTINGS_CLASSES = (
    "captioning_common.settings:ServiceSettings",
    "captioning_common.settings:EnvironmentSettings",
    "captioning_common.settings:KafkaSettings",
    "captioning_common.settings:S3Settings",
    "captioning_common.settings:TritonSettings",
    "services.ingest.settings:IngestSettings",
    "services.caption.settings:CaptionSettings",
    "services.moderation.settings:ModerationSettings",
    "services.indexing.settings:IndexingSettings",
    "services.console.settings:ConsoleSettings",
)
# Every settings class of the project: those and the local tools'.
SETTINGS_CLASSES = SERVICE_SETTINGS_CLASSES + ("localinfra.settings:LocalInfraSettings", "localinfra.kube:KubeSettings")


def _load(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _default(value: object) -> str:
    if isinstance(value, SecretStr):
        return "(local default)"
    return "(unset)" if value is None else f"`{value}`"


def settings_table(classes: tuple[str, ...] = SETTINGS_CLASSES) -> str:
    """Markdown table: variable, default, description."""
    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    for path in classes:
        cls = _load(path)
        prefix = cls.model_config.get("env_prefix", "")
        for name, field in cls.model_fields.items():
            rows.append(f"| `{(prefix + name).upper()}` | {_default(field.default)} | {field.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_table())
