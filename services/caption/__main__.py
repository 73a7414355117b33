"""``python -m services.caption``: caption images from ``images.uploaded`` through Triton."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from captioning_common.settings import TritonSettings
from captioning_common.stage import StageService
from captioning_common.triton import triton_client
from services.caption.settings import CaptionSettings
from services.caption.stage import CaptionStage
from services.caption.triton_captioner import TritonCaptioner


def main() -> None:
    """Run the caption service until SIGTERM."""
    service = StageService.from_cli("caption", CaptionSettings, "Consume images.uploaded in micro-batches, caption each image "
                                    "through Triton's captioner (English and Korean), write the caption record to S3 and produce captions.generated.")
    settings, triton = service.settings, TritonSettings()
    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(settings.io_concurrency, thread_name_prefix="s3"))
    asyncio.set_event_loop(loop)  # the gRPC asyncio client binds to it
    probe = triton_client(triton, "grpc")
    ready = lambda: probe.is_model_ready(settings.model_name, settings.model_version)  # noqa: E731
    captioner = TritonCaptioner(triton, settings.model_name, settings.model_version)
    service.run(CaptionStage(captioner, service.records, service.topics, service.metrics, loop, settings.max_image_bytes, ready), settings.port)


if __name__ == "__main__":
    main()
