"""The public view of one image, assembled from its per-stage records."""

from __future__ import annotations

from typing import Any

from captioning_common.records import status_of


def image_view(image_id: str, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``GET /v1/images/{id}`` body: status, captions per language, keywords, tags, objects, text, verdict, failure."""
    received = records["received"]
    view: dict[str, Any] = {
        "id": image_id,
        "status": status_of(records),
        "received_at": received["received_at"],
        "content_type": received["content_type"],
        "width": received["width"],
        "height": received["height"],
        "size_bytes": received["size_bytes"],
        "languages": received["languages"],
        "client_ref": received["client_ref"],
        "metadata": received["metadata"],
        "captions": {},
        "keywords": [],
        "hashtags": [],
        "verdict": None,
    }
    moderation = records.get("moderation")
    captions = (moderation or records.get("captions") or {}).get("captions", [])
    for caption in captions:
        view["captions"][caption["language"]] = {"text": caption["text"], "keywords": caption["keywords"], "score": caption["score"]}
        view["keywords"] += [k for k in caption["keywords"] if k not in view["keywords"]]
        view["hashtags"] += [h for h in caption["hashtags"] if h not in view["hashtags"]]
    if "captions" in records:
        view["model"] = records["captions"]["model"]
        view["captioned_at"] = records["captions"]["generated_at"]
        for name in ("tags", "objects", "text_lines", "route"):
            view[name] = records["captions"].get(name, "" if name == "route" else [])
    if moderation:
        view["verdict"] = moderation["verdict"]
        view["moderation_reasons"] = moderation["reasons"]
        view["moderated_at"] = moderation["moderated_at"]
        if moderation.get("reviewer"):
            view["reviewer"] = moderation["reviewer"]
    if "index" in records:
        view["indexed_at"] = records["index"]["indexed_at"]
    if "failure" in records:
        failure = records["failure"]
        view["failure"] = {"stage": failure["stage"], "code": failure["code"], "reason": failure["message"]}
    return view
