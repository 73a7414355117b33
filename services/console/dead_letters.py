"""Dead letters for operators: per topic, what failed and why; replay of a selection through the replay CLI's code."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from confluent_kafka import Consumer

from captioning_common.events import iso
from captioning_common.kafka.consumer import watermarks
from captioning_common.kafka.replay import ListedLetter, ReplayReport, latest_dead_letters, replay
from captioning_common.kafka.topics import TopicSpec
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings

log = logging.getLogger(__name__)
MESSAGE_CHARS = 2000
KEY_CHARS = 200


class DeadLetters:
    """The dead-letter topics of the spec, listed and replayed with the console's Kafka and S3 access."""

    def __init__(self, kafka: KafkaSettings, records: ImageRecords, topics: dict[str, TopicSpec], limit: int) -> None:
        self.kafka, self.records, self.limit, self.spec = kafka, records, limit, topics
        self.topics = {name: spec for name, spec in topics.items() if spec.event == "DeadLetter"}

    def counts(self) -> list[dict[str, Any]]:
        """Each dead-letter topic with the number of records it holds."""
        consumer = Consumer(self.kafka.client_config() | {"group.id": f"console-dlq-{uuid.uuid4()}"})
        try:
            return [
                {"topic": name, "stage": spec.producer, "records": sum(high - low for low, high in watermarks(consumer, name).values())}
                for name, spec in self.topics.items()
            ]
        finally:
            consumer.close()

    def latest(self, topic: str) -> dict[str, Any]:
        """The newest letters of ``topic`` (newest first) and how many it holds."""
        total, listed = latest_dead_letters(topic, self.kafka, self.limit, self.spec)
        return {"topic": topic, "records": total, "letters": [letter_view(item) for item in listed]}

    def replay(self, topic: str, selection: set[tuple[int, int]], operator: str) -> ReplayReport:
        """Replay the chosen letters of ``topic`` (the CLI's ``--offset``), logged with the operator's name."""
        report = replay(topic, self.kafka, self.records, topics=self.spec, selection=selection)
        log.info("dead letters replayed", extra={"operator": operator, "topic": topic, "chosen": len(selection), "replayed": report.replayed})
        return report


def letter_view(item: ListedLetter) -> dict[str, Any]:
    """One listed record as JSON for the console."""
    view: dict[str, Any] = {"partition": item.partition, "offset": item.offset}
    letter = item.letter
    if letter is None:
        return view | {"code": "not_a_dead_letter", "message": "this record is not a DeadLetter event; it cannot be replayed"}
    message = letter.error_message
    return view | {
        "stage": letter.stage,
        "source_topic": letter.source_topic,
        "code": letter.error_code,
        "message": message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + " ...",
        "attempts": letter.attempts,
        "failed_at": iso(letter.failed_at) if letter.HasField("failed_at") else "",
        "image_id": letter.image_id,
        "key": letter.original_key.decode(errors="replace")[:KEY_CHARS],
        "original_in_store": letter.HasField("original_object"),
    }
