"""Reviewer credentials and signed review decisions.

Reviewers are configured as ``name=key,name2=key2`` (``CAPTIONING_REVIEWER_KEYS``);
the reviewer recorded with a decision is the name bound to the key that made it.
Each ``ReviewDecision`` carries an HMAC-SHA256 ``signature`` over a canonical
encoding of its image id, verdict, reviewer, note and decision time, made with
``CAPTIONING_REVIEW_SIGNING_KEY``; whoever applies decisions checks it with
:func:`verify_decision` and refuses a decision whose signature does not match.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from captioning_events.v1.moderation_pb2 import ReviewDecision

_DOMAIN = b"captioning.review_decision.v1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def parse_reviewer_keys(text: str, variable: str = "CAPTIONING_REVIEWER_KEYS") -> dict[str, str]:
    """``name=key,name2=key2`` as ``{key: name}`` (reviewer keys, or other named keys read from ``variable``).

    A name may hold several keys (rotation); two names may not share one. A
    malformed entry raises ValueError naming ``variable`` and its position, never a key.
    """
    named: dict[str, str] = {}
    for position, entry in enumerate((e for e in text.split(",") if e.strip()), start=1):
        name, sep, key = (part.strip() for part in entry.partition("="))
        if not sep or not key or not _NAME.match(name):
            raise ValueError(
                f"{variable} entry {position} is not name=key "
                "(a name of letters, digits, '.', '_', '@' or '-', then a non-empty key)"
            )
        if named.get(key, name) != name:
            raise ValueError(f"{variable} entry {position} reuses the key of {named[key]!r}")
        named[key] = name
    return named


def reviewer_for(key: str | None, reviewers: dict[str, str]) -> str | None:
    """The reviewer name bound to ``key``, or None; every configured key is compared in constant time."""
    found = None
    for candidate, name in reviewers.items():
        if key is not None and hmac.compare_digest(key.encode(), candidate.encode()):
            found = name
    return found


def canonical_decision(decision: ReviewDecision) -> bytes:
    """The signed bytes: each field length-prefixed, so no two decisions encode alike."""
    fields = (
        _DOMAIN,
        decision.image_id.encode(),
        str(int(decision.verdict)).encode(),
        decision.reviewer.encode(),
        decision.note.encode(),
        f"{decision.decided_at.seconds}.{decision.decided_at.nanos:09d}".encode(),
    )
    return b"".join(len(field).to_bytes(4, "big") + field for field in fields)


def sign_decision(decision: ReviewDecision, key: str | bytes) -> str:
    """Hex HMAC-SHA256 of the decision's canonical encoding under ``key`` (the ``signature`` field is not covered)."""
    secret = key.encode() if isinstance(key, str) else key
    if not secret:
        raise ValueError("an empty key cannot sign review decisions")
    return hmac.new(secret, canonical_decision(decision), hashlib.sha256).hexdigest()


def verify_decision(decision: ReviewDecision, key: str | bytes) -> bool:
    """True when the decision's ``signature`` is the one ``key`` gives it (constant-time); False for no key or signature."""
    if not key or not decision.signature:
        return False
    return hmac.compare_digest(sign_decision(decision, key), decision.signature)
