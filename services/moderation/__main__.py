"""``python -m services.moderation``: screen images and captions, apply review decisions."""

from captioning_common.stage import StageService
from services.moderation.image_classifier import image_classifier_for
from services.moderation.settings import ModerationSettings
from services.moderation.stage import ModerationStage


def main() -> None:
    """Run the moderation service until SIGTERM."""
    service = StageService.from_cli(
        "moderation", ModerationSettings, "Consume captions.generated and moderation.decisions; check each image (NudeNet by default) "
        "and its captions (profanity, sensitive-attribute policy); produce approve/review/reject verdicts to captions.moderated "
        "(and review items to moderation.review); apply signed review decisions.",
    )
    classifier = image_classifier_for(service.settings)
    stage = ModerationStage(service.settings, classifier, service.records, service.topics, service.metrics, service.service.signing_key())
    service.run(stage, service.settings.port)


if __name__ == "__main__":
    main()
