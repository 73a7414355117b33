"""The single-writer rule of the index, enforced: a lease object in the bucket.

Only the holder consumes ``captions.moderated`` and writes the table; every replica
serves search. The lease is ``<index_prefix>/<table>.writer.json`` holding the
holder's id and expiry; it is taken with a conditional create, renewed and taken
over with conditional writes on its ETag, so two replicas can never both hold it.
A holder that cannot renew in time stops writing (its process exits and restarts).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from captioning_common.storage import ObjectStore

log = logging.getLogger(__name__)
_LEASE_MAX_BYTES = 4096  # a holder id and an expiry


class WriterLease:
    """Take, renew and release the index writer's lease."""

    def __init__(self, store: ObjectStore, key: str, ttl_s: float, holder: str | None = None) -> None:
        self.store = store
        self.key = key
        self.ttl_s = ttl_s
        self.holder = holder or uuid.uuid4().hex
        self._version = ""
        self._expires = 0.0

    def held(self) -> bool:
        """True while this process holds an unexpired lease (a readiness check of the writer)."""
        return bool(self._version) and time.time() < self._expires

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew ours; True when held afterwards."""
        current, version = self._read()
        if current is not None and current["holder"] != self.holder and current["expires_at"] > time.time():
            self._version = ""
            return False
        expires = time.time() + self.ttl_s
        body = json.dumps({"holder": self.holder, "expires_at": expires}).encode()
        written = self.store.put_if(self.key, body, version, content_type="application/json")
        if written is None:
            self._version = ""
            return False  # another replica wrote it first
        if not self._version:
            log.info("took the index writer lease", extra={"holder": self.holder})
        self._version, self._expires = written, expires
        return True

    def release(self) -> None:
        """Give the lease up (at shutdown) so another replica takes it at once."""
        if not self.held():
            return
        self.store.delete(self.key)  # conditional delete is not universal
        self._version = ""

    def _read(self) -> tuple[dict | None, str]:
        found = self.store.get_versioned(self.key, _LEASE_MAX_BYTES)
        if found is None:
            return None, ""
        data, version = found
        return json.loads(data), version
