"""Who may do what in the console: the key shown to it, never more.

An API key (``CAPTIONING_API_KEYS``) uploads, searches and follows images; a
reviewer key (``CAPTIONING_REVIEWER_KEYS``) sees the review queue, decides and
follows images; an operator key (``CAPTIONING_OPERATOR_KEYS``) lists and replays
dead letters. Calls the console forwards to the ingest and search APIs carry the
same key, so those APIs check it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from captioning_common.http_api import ApiError, is_key, unauthorized
from captioning_common.reviews import reviewer_for
from captioning_common.settings import ServiceSettings

API = "/api/"


@dataclass(frozen=True)
class Identity:
    """What one key is: an upload key, a reviewer (by name), an operator (by name), or several."""

    uploader: bool = False
    reviewer: str | None = None
    operator: str | None = None

    @property
    def roles(self) -> list[str]:
        """``uploader``, ``reviewer`` and ``operator``, those the key holds."""
        return [role for role, held in (("uploader", self.uploader), ("reviewer", self.reviewer), ("operator", self.operator)) if held]

    @property
    def name(self) -> str:
        """The reviewer or operator name bound to the key ("" for an upload key)."""
        return self.reviewer or self.operator or ""


# Route prefix (after /api/) -> the roles any one of which lets a request in.
_RULES = (
    ("session", ("uploader", "reviewer", "operator")),
    ("search", ("uploader",)),
    ("images/", ("uploader", "reviewer")),  # reading an image's status
    ("images", ("uploader",)),  # uploading
    ("events", ("uploader", "reviewer")),
    ("review-queue", ("reviewer",)),
    ("reviews/", ("reviewer",)),
    ("dead-letters", ("operator",)),
)
_NEEDS = {"uploader": "an API key", "reviewer": "a reviewer key", "operator": "an operator key"}


@dataclass(frozen=True)
class ConsoleAccess:
    """The keys of the deployment, read from the same settings as the APIs'."""

    upload_keys: list[str]
    reviewers: dict[str, str] = field(default_factory=dict)
    operators: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, service: ServiceSettings) -> ConsoleAccess:
        """The access of ``CAPTIONING_API_KEYS``, ``CAPTIONING_REVIEWER_KEYS`` and ``CAPTIONING_OPERATOR_KEYS``."""
        return cls(service.api_key_list(), service.reviewers(), service.operators())

    def identify(self, key: str | None) -> Identity | None:
        """The identity of ``key``, or None for a missing or unknown key (constant-time comparisons)."""
        identity = Identity(is_key(key, self.upload_keys), reviewer_for(key, self.reviewers), reviewer_for(key, self.operators))
        return identity if identity.roles else None

    def refusal(self, method: str, path: str, key: str | None) -> ApiError | None:
        """Why the headers alone refuse an ``/api`` request (401 unknown key, 403 a key without the role), or None."""
        identity = self.identify(key)
        if identity is None:
            return unauthorized()
        route = path.removeprefix(API)
        for prefix, roles in _RULES:
            if route.startswith(prefix):
                if set(roles) & set(identity.roles):
                    return None
                return ApiError(403, "forbidden", f"this needs {' or '.join(_NEEDS[role] for role in roles)}")
        return None  # no such route: the router answers 404
