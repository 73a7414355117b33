"""Reviewer keys and the signature of review decisions."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from captioning_common.reviews import canonical_decision, parse_reviewer_keys, reviewer_for, sign_decision, verify_decision
from captioning_events.v1.moderation_pb2 import ReviewDecision, Verdict

KEY = "signing-secret"


def _decision(**changes) -> ReviewDecision:
    fields = {
        "image_id": "a" * 64,
        "verdict": Verdict.VERDICT_REJECT,
        "reviewer": "alice",
        "note": "guesses an attribute",
        "decided_at": Timestamp(seconds=1_700_000_000, nanos=5),
    }
    return ReviewDecision(**(fields | changes))


def _signed(**changes) -> ReviewDecision:
    decision = _decision(**changes)
    decision.signature = sign_decision(decision, KEY)
    return decision


def test_a_signed_decision_verifies_and_survives_the_wire() -> None:
    decision = _signed()
    assert len(decision.signature) == 64
    assert verify_decision(ReviewDecision.FromString(decision.SerializeToString()), KEY)
    assert verify_decision(decision, KEY.encode())


@pytest.mark.parametrize(
    "field, value",
    [
        ("verdict", Verdict.VERDICT_APPROVE),
        ("reviewer", "mallory"),
        ("image_id", "b" * 64),
        ("note", "guesses an attribute!"),
        ("decided_at", Timestamp(seconds=1_700_000_000, nanos=6)),
    ],
)
def test_a_tampered_decision_does_not_verify(field: str, value) -> None:
    decision = _signed()
    if field == "decided_at":
        decision.decided_at.CopyFrom(value)
    else:
        setattr(decision, field, value)
    assert not verify_decision(decision, KEY)


def test_unsigned_or_foreign_decisions_do_not_verify() -> None:
    assert not verify_decision(_decision(), KEY)
    assert not verify_decision(_signed(), "another-key")
    assert not verify_decision(_signed(), "")
    with pytest.raises(ValueError):
        sign_decision(_decision(), "")


def test_the_encoding_keeps_field_boundaries() -> None:
    # Moving text from the reviewer into the note must change what is signed.
    assert canonical_decision(_decision(reviewer="al", note="ice")) != canonical_decision(_decision(reviewer="ali", note="ce"))


def test_reviewer_keys_bind_names_to_keys() -> None:
    reviewers = parse_reviewer_keys(" alice = k1 ,bob=k2,alice=k3,")
    assert reviewers == {"k1": "alice", "k2": "bob", "k3": "alice"}
    assert reviewer_for("k2", reviewers) == "bob"
    assert reviewer_for("k4", reviewers) is None and reviewer_for(None, reviewers) is None
    assert parse_reviewer_keys("") == {}


@pytest.mark.parametrize("text", ["alice", "alice=", "=k1", "al ice=k1", "alice=k1,bob=k1"])
def test_malformed_reviewer_keys_are_refused_without_echoing_a_key(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_reviewer_keys(text)
    assert "k1" not in str(caught.value)
