"""``python -m services.ingest``: the upload API and the claim-check stage."""

from captioning_common.http_api import serve
from captioning_common.stage import StageService
from services.ingest.api import Access, create_app
from services.ingest.intake import Intake
from services.ingest.settings import IngestSettings
from services.ingest.submissions import SubmissionStage


def main() -> None:
    """Serve the ingest API until SIGTERM, then stop the claim-check stage and flush the producer."""
    service = StageService.from_cli("ingest", IngestSettings, "Serve POST /v1/images, GET /v1/images/{id} and POST /v1/reviews/{id} "
                                    "(OpenAPI at /docs), and validate claim-check submissions from images.submitted.")
    intake = Intake(service.records, service.producer)
    submissions = service.background(SubmissionStage(service.settings, intake, service.metrics))
    readiness = submissions.runtime.readiness()
    app = create_app(service.settings, Access.of(service.service), intake, service.records, service.metrics, readiness, submissions.lifespan())
    serve(app, service.service.bind_host, service.settings.port)


if __name__ == "__main__":
    main()
