"""What a stage handler receives and what it returns: typed events in, effects out.

A handler never touches Kafka: it gets ``Inbound`` events and returns one
``Outcome`` per event. The runtime applies the outcomes in a fixed order (see
``captioning_common.stage.runtime``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

E = TypeVar("E", bound=Message)


@dataclass(frozen=True)
class Inbound(Generic[E]):
    """One consumed event and where it was read from."""

    event: E
    subject: str
    topic: str
    partition: int
    offset: int

    @property
    def image_id(self) -> str:
        """The event's image id (its CloudEvents subject when the event has no such field)."""
        return getattr(self.event, "image_id", "") or self.subject


@dataclass(frozen=True)
class Emit:
    """An event to produce; the runtime waits for the broker's acknowledgement."""

    topic: str
    event: Message
    key: str


@dataclass(frozen=True)
class RecordChange:
    """Write (``body``) or remove (``body=None``) one stage record of an image in S3.

    With ``version`` (the ETag the handler read, "" for a record it found absent) the
    write happens only if nobody changed the record since; otherwise the runtime
    retries the message, whose handler then reads the record again.
    """

    image_id: str
    stage: str
    body: dict[str, Any] | None
    version: str | None = None


@dataclass(frozen=True)
class Failure:
    """The input can never succeed: dead-letter it with this cause.

    ``image_id=""`` for an input that never became an image (no ``failure`` record).
    """

    code: str
    message: str
    image_id: str | None = None


@dataclass
class Outcome:
    """The effects of one input, applied in this order: ``records`` written, every
    ``events`` acknowledged, ``marks`` (completion markers) written; then the offset
    is committed. With ``failure`` set, the input is dead-lettered instead.
    ``result`` labels the input in ``captioning_messages_total``.
    """

    records: list[RecordChange] = field(default_factory=list)
    events: list[Emit] = field(default_factory=list)
    marks: list[RecordChange] = field(default_factory=list)
    failure: Failure | None = None
    result: str = "ok"

    @classmethod
    def failed(cls, code: str, message: str, image_id: str | None = None) -> Outcome:
        """An outcome that dead-letters its input."""
        return cls(failure=Failure(code, message, image_id), result="dead_letter")
