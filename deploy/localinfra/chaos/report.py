"""The verdict of a chaos run: every violation with its evidence, and the run's figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from localinfra.chaos.checks import final_kind
from localinfra.chaos.environment import REVIEWER
from localinfra.chaos.workload import Sent

ACCEPTED = ("202", "200", "produced")


@dataclass
class Evidence:
    """What the run observed, gathered after the drain."""

    sent: list[Sent]
    statuses: dict[str, dict | None]
    index_rows: Counter
    index_events: dict[str, list[str]]
    held: set[str]
    decided: dict[str, str]
    refused: dict[str, str]
    fault_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    drained: bool = True
    lagging: list[dict] = field(default_factory=list)  # partitions behind after the drain timeout, with their keys
    under_replicated: list[str] = field(default_factory=list)


def violations(evidence: Evidence) -> list[dict]:
    """Every broken promise, one entry each: ``check``, ``image_id`` (where one is concerned) and ``detail``."""
    found: list[dict] = []

    def add(check: str, detail: str, image_id: str = "") -> None:
        found.append({"check": check, "image_id": image_id, "detail": detail})

    accepted = {}
    for sent in evidence.sent:
        image_id = sent.item.image_id
        if sent.outcome in ACCEPTED:
            accepted[image_id] = sent
            if sent.returned_id and sent.returned_id != image_id:
                add("wrong_id", f"API answered id {sent.returned_id}, the bytes hash to {image_id}", image_id)
        elif sent.outcome == "gave_up":
            add("client_gave_up", f"{sent.item.via} of item {sent.item.index} never got an answer within the retry budget", image_id)
        else:
            add("upload_refused", f"valid {sent.item.kind} {sent.item.via} answered {sent.outcome}", image_id)
    kinds = {image_id: final_kind(evidence.statuses.get(image_id)) for image_id in accepted}
    for image_id, kind in kinds.items():
        if not kind:
            add("not_final", _summary(evidence.statuses.get(image_id)), image_id)
    approved = {image_id for image_id, kind in kinds.items() if kind == "indexed"}
    for image_id in approved:
        if evidence.index_rows[image_id] != 1:
            add("index_rows", f"approved and indexed, but {evidence.index_rows[image_id]} rows in the index", image_id)
        operations = evidence.index_events.get(image_id, [])
        if "UPSERT" not in operations:
            add("index_event_missing", f"indexed, but no UPSERT on index.updated (events: {operations})", image_id)
        elif operations[-1] != "UPSERT":
            add("index_event_stale", f"indexed, but the last index.updated event is {operations[-1]} ({operations})", image_id)
    for image_id, rows in evidence.index_rows.items():
        if image_id not in approved and rows:
            add("index_not_approved", f"{rows} row(s) in the index, final status {_summary(evidence.statuses.get(image_id))}", image_id)
    for image_id, verdict in evidence.decided.items():
        status = evidence.statuses.get(image_id) or {}
        expected = "indexed" if verdict == "approve" else "rejected"
        if status.get("verdict") != verdict or status.get("reviewer") != REVIEWER or kinds.get(image_id, final_kind(status)) != expected:
            add("decision_overridden", f"reviewer decided {verdict}; final {_summary(status)} reviewer={status.get('reviewer')!r}", image_id)
    for image_id, answer in evidence.refused.items():
        add("decision_refused", f"the review API did not take a decision on a held image: {answer}", image_id)
    for error in evidence.fault_errors:
        add("fault_injection", error)
    for error in evidence.server_errors:
        add("server_error", error)
    for row in evidence.lagging:
        detail = f"{row['group']} {row['topic']}/{row['partition']}: committed {row['committed']}, end {row['high']}, uncommitted {row['keys']}"
        add("not_drained", detail, row["keys"][0].partition(":")[2] if row["keys"] else "")
    if not evidence.drained and not evidence.lagging:
        add("not_drained", "lag 0 on every group, but processes down, reviews pending or partitions under-replicated at the drain timeout")
    if evidence.under_replicated:
        add("under_replicated", f"partitions still short of in-sync replicas: {evidence.under_replicated[:10]}")
    return found


def figures(evidence: Evidence) -> dict:
    """Counts of what was sent, how it ended, the index and the reviews."""
    accepted = {s.item.image_id for s in evidence.sent if s.outcome in ACCEPTED}
    kinds = Counter(final_kind(evidence.statuses.get(image_id)) or "not_final" for image_id in accepted)
    failures = Counter(
        f"{status['failure']['stage']}:{status['failure']['code']}"
        for image_id in accepted
        if (status := evidence.statuses.get(image_id)) and status.get("failure")
    )
    upserts = Counter(ops.count("UPSERT") for ops in evidence.index_events.values())
    return {
        "items": len(evidence.sent),
        "by_route": dict(Counter(s.item.via for s in evidence.sent)),
        "by_kind": dict(Counter(s.item.kind for s in evidence.sent)),
        "outcomes": dict(Counter(s.outcome if s.outcome in ACCEPTED + ("gave_up",) else "refused" for s in evidence.sent)),
        "final": dict(kinds),
        "failure_causes": dict(failures),
        "index_rows": sum(evidence.index_rows.values()),
        "index_images": len(evidence.index_rows),
        "index_events_images": len(evidence.index_events),
        "upserts_per_image": {str(k): v for k, v in sorted(upserts.items())},
        "repeated_upserts": [  # at-least-once: allowed, listed so a crash that caused them can be traced
            {"image_id": s.item.image_id, "kind": s.item.kind, "via": s.item.via, "upserts": evidence.index_events[s.item.image_id].count("UPSERT"),
             "decided": evidence.decided.get(s.item.image_id, "")}
            for s in evidence.sent
            if evidence.index_events.get(s.item.image_id, []).count("UPSERT") > 1
        ],
        "held_for_review": len(evidence.held),
        "decisions": dict(Counter(evidence.decided.values())),
    }


def _summary(status: dict | None) -> str:
    if status is None:
        return "no record (404 or no answer)"
    text = f"status={status.get('status')} verdict={status.get('verdict')}"
    if status.get("failure"):
        text += f" failure={status['failure']}"
    return text
