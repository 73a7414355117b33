"""The chaos run's pure logic: the seeded schedule and the verdict on what it observed."""

from __future__ import annotations

from collections import Counter

import pytest

from localinfra.chaos.checks import final_kind
from localinfra.chaos.environment import REVIEWER
from localinfra.chaos.report import Evidence, violations
from localinfra.chaos.schedule import Shape, plan
from localinfra.chaos.workload import Item, Sent

SERVICES = ("ingest", "caption", "moderation", "indexing", "caption-1")
SHAPE = Shape(duration_s=300, service_kills=24, services=SERVICES, brokers=("kafka-1", "kafka-2", "kafka-3"), servers=("s3", "triton"))


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert plan(0, SHAPE) == plan(0, SHAPE)
    assert plan(0, SHAPE) != plan(1, SHAPE)


@pytest.mark.parametrize("seed", range(5))
def test_a_schedule_hits_every_service_one_broker_and_each_server(seed: int) -> None:
    faults = plan(seed, SHAPE)
    services = [f for f in faults if f.kind == "service"]
    assert len(services) == 24 and {f.target for f in services} == set(SERVICES)
    assert len([f for f in faults if f.kind == "broker"]) == 1
    assert sorted(f.target for f in faults if f.kind == "server") == ["s3", "triton"]
    assert [f.at_s for f in faults] == sorted(f.at_s for f in faults)
    assert all(0 <= f.at_s <= SHAPE.duration_s for f in faults)


def test_fewer_kills_than_services_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot reach each"):
        plan(0, Shape(duration_s=60, service_kills=3, services=SERVICES, brokers=()))


def _status(status: str, verdict: str | None, **extra) -> dict:
    return {"status": status, "verdict": verdict, "moderation_reasons": [{"code": "x"}] if verdict else [], **extra}


def test_final_means_indexed_and_approved_failed_with_a_cause_or_rejected() -> None:
    assert final_kind(_status("indexed", "approve")) == "indexed"
    assert final_kind(_status("failed", None, failure={"stage": "caption", "code": "corrupt_image", "reason": "r"})) == "failed"
    assert final_kind(_status("failed", None, failure={"stage": "caption", "code": "", "reason": ""})) == ""
    assert final_kind(_status("moderated", "reject")) == "rejected"
    for status in (_status("moderated", "review"), _status("moderated", "approve"), _status("captioned", None), None):
        assert final_kind(status) == ""


def _sent(index: int, outcome: str = "202") -> Sent:
    item = Item(index, "scene", "upload", f"image {index}".encode())
    return Sent(item, outcome, item.image_id)


def test_each_broken_promise_is_a_violation_naming_the_image() -> None:
    ok, stuck, twice, unannounced, overridden = (_sent(i) for i in range(5))
    ids = [s.item.image_id for s in (ok, stuck, twice, unannounced, overridden)]
    evidence = Evidence(
        sent=[ok, stuck, twice, unannounced, overridden, _sent(5, "gave_up")],
        statuses={
            ids[0]: _status("indexed", "approve"),
            ids[1]: _status("moderated", "review"),
            ids[2]: _status("indexed", "approve"),
            ids[3]: _status("indexed", "approve"),
            ids[4]: _status("indexed", "approve", reviewer="someone-else"),
        },
        index_rows=Counter({ids[0]: 1, ids[2]: 2, ids[3]: 1, ids[4]: 1}),
        index_events={ids[0]: ["UPSERT"], ids[2]: ["UPSERT"], ids[4]: ["UPSERT"]},
        held={ids[1], ids[4]},
        decided={ids[4]: "reject"},
        refused={},
    )
    found = {(v["check"], v["image_id"]) for v in violations(evidence)}
    assert found == {
        ("not_final", ids[1]),
        ("index_rows", ids[2]),
        ("index_event_missing", ids[3]),
        ("decision_overridden", ids[4]),
        ("client_gave_up", _sent(5).item.image_id),
    }


def test_a_run_that_kept_its_promises_has_no_violation() -> None:
    sent = [_sent(i) for i in range(3)]
    ids = [s.item.image_id for s in sent]
    evidence = Evidence(
        sent=sent,
        statuses={
            ids[0]: _status("indexed", "approve", reviewer=REVIEWER),
            ids[1]: _status("moderated", "reject", reviewer=REVIEWER),
            ids[2]: _status("failed", None, failure={"stage": "caption", "code": "corrupt_image", "reason": "r"}),
        },
        index_rows=Counter({ids[0]: 1}),
        index_events={ids[0]: ["UPSERT"]},
        held={ids[0], ids[1]},
        decided={ids[0]: "approve", ids[1]: "reject"},
        refused={},
    )
    assert violations(evidence) == []


def test_a_partition_left_behind_is_a_violation_naming_its_uncommitted_image() -> None:
    sent = _sent(0)
    image_id = sent.item.image_id
    row = {"group": "chaos-caption", "topic": "images.uploaded", "partition": 3, "committed": 7, "high": 8, "lag": 1, "keys": [f"7:{image_id}"]}
    evidence = Evidence(
        sent=[sent],
        statuses={image_id: _status("indexed", "approve")},
        index_rows=Counter({image_id: 1}),
        index_events={image_id: ["UPSERT"]},
        held=set(),
        decided={},
        refused={},
        drained=False,
        lagging=[row],
    )
    (violation,) = violations(evidence)
    assert violation["check"] == "not_drained" and violation["image_id"] == image_id
    assert "images.uploaded/3: committed 7, end 8" in violation["detail"]
