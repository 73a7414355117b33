"""``python -m services.ingest``: the upload API and the claim-check reader."""

from __future__ import annotations

import argparse
import logging

from confluent_kafka.admin import AdminClient

from captioning_common.http_api import consumer_lifespan, serve
from captioning_common.kafka import BatchConsumer, EventProducer
from captioning_common.logs import configure_logging
from captioning_common.metrics import PipelineMetrics
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings, S3Settings, ServiceSettings
from captioning_common.stage import BackgroundConsumer, DeadLetters
from captioning_common.storage import ObjectStore
from services.ingest.api import create_app
from services.ingest.intake import Intake
from services.ingest.settings import IngestSettings
from services.ingest.submissions import INPUT_TOPIC, SubmissionHandler

NAME = "ingest"
log = logging.getLogger(__name__)


def main() -> None:
    """Serve the ingest API until SIGTERM, then stop the claim-check reader and flush the producer."""
    argparse.ArgumentParser(
        prog="python -m services.ingest",
        description="Serve POST /v1/images, GET /v1/images/{id} and POST /v1/reviews/{id} (OpenAPI at /docs), "
        "and validate claim-check submissions from images.submitted. "
        "Configured by CAPTIONING_* environment variables (see the README).",
    ).parse_args()
    service, settings, kafka = ServiceSettings(), IngestSettings(), KafkaSettings()
    configure_logging(NAME, service.log_level)
    if not service.api_key_list():
        log.warning("CAPTIONING_API_KEYS is empty: every /v1 request will get 401")
    metrics = PipelineMetrics(NAME)
    store = ObjectStore(S3Settings())
    records = ImageRecords(store)
    producer = EventProducer(kafka, source=NAME)
    intake = Intake(records, producer, claim_timeout_s=kafka.delivery_timeout_ms / 1000)
    consumer = BatchConsumer(kafka, settings.group_id, [INPUT_TOPIC], batch_size=settings.submissions_batch_size)
    handler = SubmissionHandler(settings, intake, DeadLetters(NAME, producer, records, metrics), metrics)
    admin = AdminClient(kafka.client_config())

    reader = BackgroundConsumer(consumer, handler.handle, metrics, "submissions")
    readiness = {
        "submissions": reader.running,
        "kafka": lambda: INPUT_TOPIC in admin.list_topics(timeout=2).topics,
        "s3": store.reachable,
    }
    app = create_app(settings, service.api_key_list(), intake, records, metrics, readiness, lifespan=consumer_lifespan(reader, producer))
    serve(app, service.bind_host, settings.port)


if __name__ == "__main__":
    main()
