"""A consumer process for the graceful-stop test, and the recording stage both Kafka tests run.

The process consumes a topic through the stage runtime and appends one line per
message (key, seq, partition, offset) to a file before the batch is committed;
SIGTERM stops it gracefully. Usage: python -m tests.integration.kafka_worker TOPIC GROUP OUT
"""

import os
import signal
import sys
import time
from collections.abc import Callable

from captioning_common.kafka import BatchConsumer, EventProducer
from captioning_common.metrics import PipelineMetrics
from captioning_common.settings import KafkaSettings
from captioning_common.stage import Outcome, RetryPolicy, StageRuntime
from captioning_events.v1.image_pb2 import ImageUploaded


class RecordingStage:
    """Hands each batch of inbound events to ``handle``; no effects of its own."""

    name = "kafka-test"

    def __init__(self, handle: Callable[[list], None]) -> None:
        self._handle = handle

    def dependencies(self) -> dict:
        return {}

    def handle(self, batch) -> list[Outcome]:
        self._handle(list(batch))
        return [Outcome() for _ in batch]


def recording_runtime(kafka: KafkaSettings, group: str, topic: str, handle: Callable[[list], None], batch_size: int) -> StageRuntime:
    """A stage runtime on ``topic`` (ImageUploaded events) whose handler is ``handle``."""
    consumer = BatchConsumer(kafka, group, [topic], batch_size=batch_size, batch_timeout_s=0.2)
    producer = EventProducer(kafka, source="tests/kafka")
    return StageRuntime(RecordingStage(handle), {topic: ImageUploaded}, consumer, producer, None, PipelineMetrics("kafka-test"), RetryPolicy())


def main() -> None:
    topic, group, out_path = sys.argv[1:4]
    with open(out_path, "a") as out:

        def handle(batch):
            for inbound in batch:
                out.write(f"{inbound.image_id} {inbound.event.metadata['seq']} {inbound.partition} {inbound.offset}\n")
            out.flush()
            os.fsync(out.fileno())
            time.sleep(0.05)  # slow enough to be stopped mid-stream

        runtime = recording_runtime(KafkaSettings(), group, topic, handle, batch_size=50)
        signal.signal(signal.SIGTERM, lambda *_: runtime.stop())
        runtime.run()
    print("worker stopped cleanly", flush=True)


if __name__ == "__main__":
    main()
