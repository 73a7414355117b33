"""The stage runtime: typed events in, effects out, applied in one order (see ``runtime``)."""

from captioning_common.stage.bootstrap import BackgroundStage, StageService
from captioning_common.stage.outcome import Emit, Failure, Inbound, Outcome, RecordChange
from captioning_common.stage.runtime import RetryPolicy, Stage, StageRuntime
from captioning_common.stage.settings import StageSettings

__all__ = [
    "BackgroundStage",
    "Emit",
    "Failure",
    "Inbound",
    "Outcome",
    "RecordChange",
    "RetryPolicy",
    "Stage",
    "StageRuntime",
    "StageService",
    "StageSettings",
]
