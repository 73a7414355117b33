"""``python -m services.caption``: caption images from ``images.uploaded`` through Triton."""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor

from captioning_common.kafka import BatchConsumer, EventProducer
from captioning_common.logs import configure_logging
from captioning_common.metrics import PipelineMetrics
from captioning_common.ops_server import OpsServer
from captioning_common.records import ImageRecords
from captioning_common.settings import KafkaSettings, S3Settings, ServiceSettings, TritonSettings
from captioning_common.stage import run_consumer
from captioning_common.storage import ObjectStore
from captioning_common.triton import triton_client
from services.caption.settings import CaptionSettings
from services.caption.triton_captioner import TritonCaptioner
from services.caption.worker import CaptionWorker

NAME = "caption"


def main() -> None:
    """Run the caption service until SIGTERM."""
    argparse.ArgumentParser(
        prog="python -m services.caption",
        description="Consume images.uploaded in micro-batches, caption each image through Triton's captioner "
        "(English and Korean), write the caption record to S3 and produce captions.generated. "
        "Configured by CAPTIONING_* environment variables (see the README).",
    ).parse_args()
    service, settings, triton = ServiceSettings(), CaptionSettings(), TritonSettings()
    configure_logging(NAME, service.log_level)
    metrics = PipelineMetrics(NAME)
    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(settings.fetch_concurrency, thread_name_prefix="s3"))  # S3 calls
    asyncio.set_event_loop(loop)
    producer = EventProducer(KafkaSettings(), source=NAME)
    records = ImageRecords(ObjectStore(S3Settings()))
    worker = CaptionWorker(
        TritonCaptioner(triton, settings.model_name, settings.model_version), records, producer, metrics, loop
    )
    consumer = BatchConsumer(
        KafkaSettings(),
        settings.group_id,
        ["images.uploaded"],
        batch_size=settings.batch_size,
        batch_timeout_s=settings.batch_wait_ms / 1000,
        retry_backoff_s=settings.retry_backoff_s,
        max_retry_backoff_s=settings.max_retry_backoff_s,
    )
    probe = triton_client(triton, "grpc")
    ops = OpsServer(
        metrics.registry,
        service.bind_host,
        settings.port,
        liveness={"process": lambda: True},
        readiness={"triton": lambda: probe.is_model_ready(settings.model_name, settings.model_version)},
    )
    run_consumer(consumer, worker.handle, metrics, ops, producer)


if __name__ == "__main__":
    main()
