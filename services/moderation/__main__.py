"""``python -m services.moderation``: screen images and captions, apply review decisions."""

from __future__ import annotations

import argparse

from captioning_common.kafka import BatchConsumer, EventProducer
from captioning_common.logs import configure_logging
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import OpsServer
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings, S3Settings, ServiceSettings
from captioning_common.stage import run_consumer
from captioning_common.storage import ObjectStore
from services.moderation.image_classifier import image_classifier_for
from services.moderation.settings import ModerationSettings
from services.moderation.worker import INPUT_TOPICS, ModerationWorker

NAME = "moderation"


def main() -> None:
    """Run the moderation service until SIGTERM."""
    argparse.ArgumentParser(
        prog="python -m services.moderation",
        description="Consume captions.generated and moderation.decisions; check each image (NudeNet by default) and "
        "its captions (profanity, sensitive-attribute policy); produce approve/review/reject verdicts to "
        "captions.moderated (and review items to moderation.review). Configured by CAPTIONING_* environment "
        "variables (see the README).",
    ).parse_args()
    service, settings, kafka = ServiceSettings(), ModerationSettings(), KafkaSettings()
    configure_logging(NAME, service.log_level)
    metrics = PipelineMetrics(NAME)
    store = ObjectStore(S3Settings())
    producer = EventProducer(kafka, source=NAME)
    worker = ModerationWorker(settings, image_classifier_for(settings), ImageRecords(store), producer, metrics)
    consumer = BatchConsumer(kafka, settings.group_id, INPUT_TOPICS, batch_size=settings.batch_size)
    ops = OpsServer(
        metrics.registry,
        service.bind_host,
        settings.port,
        liveness={"process": lambda: True},
        readiness={"s3": store.reachable},
    )
    run_consumer(consumer, worker.handle, metrics, ops, producer)


if __name__ == "__main__":
    main()
