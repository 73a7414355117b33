"""``python -m services.indexing``: index approved captions and serve the search API."""

from __future__ import annotations

import argparse

from captioning_common.http_api import consumer_lifespan, serve
from captioning_common.kafka import BatchConsumer, EventProducer
from captioning_common.logs import configure_logging
from captioning_common.metrics import PipelineMetrics
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings, S3Settings, ServiceSettings
from captioning_common.stage import BackgroundConsumer
from captioning_common.storage import ObjectStore
from services.indexing.embedder import Embedder
from services.indexing.index_store import CaptionIndex
from services.indexing.search_api import create_app
from services.indexing.settings import IndexingSettings
from services.indexing.worker import INPUT_TOPIC, IndexingWorker

NAME = "indexing"


def main() -> None:
    """Serve the search API and index until SIGTERM, then finish the in-flight batch and commit."""
    argparse.ArgumentParser(
        prog="python -m services.indexing",
        description="Consume captions.moderated, upsert approved images into the LanceDB index in S3 (one row per "
        "image id), produce index.updated, and serve GET /v1/search (OpenAPI at /docs). "
        "Configured by CAPTIONING_* environment variables (see the README).",
    ).parse_args()
    service, settings, kafka, s3 = ServiceSettings(), IndexingSettings(), KafkaSettings(), S3Settings()
    configure_logging(NAME, service.log_level)
    metrics = PipelineMetrics(NAME)
    store = ObjectStore(s3)
    index = CaptionIndex(s3, settings, Embedder())
    producer = EventProducer(kafka, source=NAME)
    worker = IndexingWorker(index, ImageRecords(store), producer, metrics, settings.io_concurrency)
    consumer = BatchConsumer(kafka, settings.group_id, [INPUT_TOPIC], batch_size=settings.batch_size)
    indexer = BackgroundConsumer(consumer, worker.handle, metrics, "indexer")
    readiness = {
        "indexer": indexer.running,
        "s3": store.reachable,
    }
    app = create_app(index, store, service.api_key_list(), metrics, readiness, lifespan=consumer_lifespan(indexer, producer))
    serve(app, service.bind_host, settings.port)


if __name__ == "__main__":
    main()
