"""``python -m services.indexing``: serve the search API; the replica holding the writer lease also indexes."""

from captioning_common.http_api import serve
from captioning_common.stage import StageService
from services.indexing.embedder import Embedder
from services.indexing.folding import BackgroundFolds
from services.indexing.index_store import CaptionIndex
from services.indexing.search_api import create_app
from services.indexing.settings import IndexingSettings
from services.indexing.stage import IndexingStage
from services.indexing.writer_lease import WriterLease


def main() -> None:
    """Serve search until SIGTERM; index while holding the writer lease, then finish the batch and commit."""
    service = StageService.from_cli(
        "indexing", IndexingSettings, "Serve GET /v1/search (OpenAPI at /docs) on every replica; the one replica holding the writer "
        "lease consumes captions.moderated, upserts approved images into the LanceDB index in S3 (one row per image id) and "
        "produces index.updated.",
    )
    settings = service.settings
    index = CaptionIndex(service.s3, settings, Embedder())
    lease = WriterLease(service.store, f"{settings.index_prefix.strip('/')}/{settings.table}.writer.json", settings.writer_lease_ttl_s)
    stage = IndexingStage(index, BackgroundFolds(index, service.metrics), service.records, service.topics, service.metrics, lease.held, settings.io_concurrency)
    writer = service.background(stage, lease)
    app = create_app(index, service.store, service.service.api_key_list(), service.metrics, {"s3": service.store.reachable}, writer.lifespan())
    serve(app, service.service.bind_host, settings.port)


if __name__ == "__main__":
    main()
