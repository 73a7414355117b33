"""The moderation decision for one image and its captions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from captioning_events.v1.caption_pb2 import Caption
from captioning_events.v1.moderation_pb2 import ModerationReason, Verdict

from services.moderation.image_classifier import ImageFinding
from services.moderation.settings import ModerationSettings
from services.moderation.text_policy import neutralise, profanity_scores, sensitive_attributes

IMAGE_NUDITY = "image.nudity"
CAPTION_PROFANITY = "caption.profanity"
CAPTION_SENSITIVE_ATTRIBUTE = "caption.sensitive_attribute"

_SEVERITY = (Verdict.VERDICT_APPROVE, Verdict.VERDICT_REVIEW, Verdict.VERDICT_REJECT)


@dataclass
class Decision:
    """Verdict, the reasons behind it and the captions as released (copies, possibly neutralised)."""

    verdict: Verdict.ValueType
    reasons: list[ModerationReason] = field(default_factory=list)
    captions: list[Caption] = field(default_factory=list)


def _copy(caption: Caption) -> Caption:
    copy = Caption()
    copy.CopyFrom(caption)
    return copy


def _graded(score: float, review: float, reject: float) -> Verdict.ValueType | None:
    if score >= reject:
        return Verdict.VERDICT_REJECT
    if score >= review:
        return Verdict.VERDICT_REVIEW
    return None


Box = tuple[float, float, float, float]  # x, y, width, height relative to the upright image
ON_PERSON_OVERLAP = 0.5  # share of a finding's box that must lie inside a person's box


def _on_person(finding: ImageFinding, people: Sequence[Box]) -> bool:
    if finding.box is None:
        return False
    x, y, w, h = finding.box
    for px, py, pw, ph in people:
        overlap = max(0.0, min(x + w, px + pw) - max(x, px)) * max(0.0, min(y + h, py + ph) - max(y, py))
        if overlap >= ON_PERSON_OVERLAP * w * h:
            return True
    return False


def decide(
    captions: Sequence[Caption], image_findings: Sequence[ImageFinding], settings: ModerationSettings, people: Sequence[Box] = ()
) -> Decision:
    """Moderate one image: nudity and caption profanity at or above the review or reject scores send
    the item to review or reject it; captions guessing sensitive attributes of people are rewritten
    (policy "neutralise") or sent to review (policy "flag"). The strongest verdict wins.

    ``people`` are the boxes of the persons the object detector found. A nudity finding on none
    of them (a colour wheel NudeNet calls buttocks at 0.85) is likely a false positive: it only
    sends the item to review, at the higher ``nudity_review_score_without_person``.
    """
    verdicts: list[Verdict.ValueType] = []
    reasons: list[ModerationReason] = []

    strongest: dict[str, ImageFinding] = {}
    for finding in image_findings:
        if finding.score > getattr(strongest.get(finding.label), "score", -1.0):
            strongest[finding.label] = finding
    for label, finding in sorted(strongest.items(), key=lambda item: -item[1].score):
        if _on_person(finding, people):
            verdict, detail = _graded(finding.score, settings.nudity_review_score, settings.nudity_reject_score), label
        else:
            verdict = Verdict.VERDICT_REVIEW if finding.score >= settings.nudity_review_score_without_person else None
            detail = f"{label} (no person detected)"
        if verdict:
            verdicts.append(verdict)
            reasons.append(ModerationReason(code=IMAGE_NUDITY, detail=detail, score=finding.score))

    released = [_copy(caption) for caption in captions]
    for caption, score in zip(released, profanity_scores([c.text for c in released])):
        if verdict := _graded(score, settings.profanity_review_score, settings.profanity_reject_score):
            verdicts.append(verdict)
            reasons.append(ModerationReason(code=CAPTION_PROFANITY, detail=caption.language, score=score))

    for caption in released:
        findings = sensitive_attributes(caption.text, caption.language)
        if not findings:
            continue
        if settings.sensitive_attribute_policy == "neutralise":
            caption.text = neutralise(caption.text, caption.language)
            detail = "neutralised"
        else:
            verdicts.append(Verdict.VERDICT_REVIEW)
            detail = f"{caption.language}: {', '.join(sorted({f.category for f in findings}))}"
        reasons.append(ModerationReason(code=CAPTION_SENSITIVE_ATTRIBUTE, detail=detail, score=1.0))

    verdict = max(verdicts, key=_SEVERITY.index, default=Verdict.VERDICT_APPROVE)
    return Decision(verdict=verdict, reasons=reasons, captions=released)
