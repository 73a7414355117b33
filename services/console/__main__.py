"""``python -m services.console``: the web console."""

from __future__ import annotations

import argparse
import contextlib
import logging

from captioning_common.http_api import serve
from captioning_common.kafka.topics import load_topics
from captioning_common.logs import configure_logging
from captioning_common.metrics import PipelineMetrics
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings, S3Settings, ServiceSettings
from captioning_common.storage import ObjectStore
from services.console.access import ConsoleAccess
from services.console.api import create_app
from services.console.dead_letters import DeadLetters
from services.console.feed import PipelineFeed
from services.console.review_queue import ReviewQueue
from services.console.settings import ConsoleSettings
from services.console.upstream import Upstream
from services.indexing.settings import IndexingSettings
from services.ingest.api import MULTIPART_OVERHEAD
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)
# Event streams never end by themselves: at shutdown they get this long, then they are cut.
STREAMS_DRAIN_S = 3.0


def main() -> None:
    """Serve the console until SIGTERM; its reader of the topics runs while it serves."""
    argparse.ArgumentParser(
        prog="python -m services.console",
        description="Serve the web console (upload and watch, search, review queue, dead letters) and its /api routes. "
        "Configured by CAPTIONING_* environment variables (see the README).",
    ).parse_args()
    settings, service, kafka = ConsoleSettings(), ServiceSettings(), KafkaSettings()
    configure_logging("console", service.log_level)
    ingest = IngestSettings()
    metrics = PipelineMetrics("console")
    store = ObjectStore(S3Settings())
    records = ImageRecords(store)
    topics = load_topics()
    feed = PipelineFeed(kafka, metrics, topics)
    upstream = Upstream(
        settings.ingest_url or f"http://127.0.0.1:{ingest.port}",
        settings.search_url or f"http://127.0.0.1:{IndexingSettings().port}",
        settings.request_timeout_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        feed.start()
        yield
        feed.stop()
        await upstream.close()
        log.info("stopped")

    readiness = {"kafka": feed.ready, "s3": store.reachable} | upstream.checks()
    app = create_app(
        settings,
        ConsoleAccess.of(service),
        feed,
        upstream,
        ReviewQueue(feed, records, settings.review_queue_limit),
        DeadLetters(kafka, records, topics, settings.dead_letter_limit),
        metrics,
        readiness,
        ingest.max_bytes + MULTIPART_OVERHEAD,
        lifespan,
    )
    serve(app, service.bind_host, settings.port, graceful_shutdown_s=STREAMS_DRAIN_S)


if __name__ == "__main__":
    main()
