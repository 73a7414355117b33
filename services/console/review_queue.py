"""The items held for review, as a reviewer needs to see them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from captioning_common.records import ImageRecords, original_key
from services.console.feed import PipelineFeed


def _by_language(captions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["language"]: {"text": c["text"], "keywords": c["keywords"], "hashtags": c["hashtags"], "score": c["score"]} for c in captions}


class ReviewQueue:
    """Held ids come from the review queue topic (the feed); each item's stored verdict decides whether it is still held."""

    def __init__(self, feed: PipelineFeed, records: ImageRecords, limit: int, threads: int = 8) -> None:
        self.feed, self.records, self.limit = feed, records, limit
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="queue")

    def items(self) -> list[dict[str, Any]]:
        """Up to ``limit`` items still held, oldest first: image URL, captions as written and as released, reasons."""
        found: list[dict[str, Any]] = []
        held = self.feed.held()
        for start in range(0, len(held), self.limit):
            for item in self._pool.map(self._item, held[start:start + self.limit]):
                if item is not None:
                    found.append(item)
            if len(found) >= self.limit:
                break
        return found[: self.limit]

    def _item(self, image_id: str) -> dict[str, Any] | None:
        moderation = self.records.get(image_id, "moderation")
        if moderation is None or moderation["verdict"] != "review":
            self.feed.release(image_id)  # decided already, or not an image of this deployment's bucket
            return None
        written = self.records.get(image_id, "captions") or {}
        return {
            "id": image_id,
            "image_url": self.records.store.presigned_get_url(original_key(image_id)),
            "written": _by_language(written.get("captions", [])),
            "released": _by_language(moderation["captions"]),
            "reasons": moderation["reasons"],
            "model": moderation["caption_model"],
            "moderated_at": moderation["moderated_at"],
        }
