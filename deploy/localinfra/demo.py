"""``python -m localinfra.demo``: the whole pipeline end to end on generated images.

Starts Kafka, MinIO, Triton, the four services and Prometheus (whatever is not running yet),
uploads the real photographs that ship inside scikit-image and scikit-learn and
generated photos, illustrations and line-art graphics through the HTTP API,
waits until each is indexed, prints its English and Korean captions, keywords and
verdict, runs a few searches, and stops what it started.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import requests

from captioner.render import render
from captioner.scenes import STYLES, SceneSampler
from localinfra.pipeline import local_api_key
from localinfra.prometheus import Prometheus
from localinfra.registry import start_missing
from localinfra.settings import InfraConfig
from perception.real_photos import REAL_PHOTOS
from services.indexing.settings import IndexingSettings
from services.ingest.settings import IngestSettings

SEARCHES = (
    ("cat", "en"),
    ("고양이", "ko"),
    ("커피", "en"),
    ("motorcycle", "ko"),
    ("red circle", "en"),
    ("a line drawing of a blue star", "en"),
    ("빨간 원", "ko"),
)
STYLE_NAMES = {"photo": "photo", "illustration": "illustration", "lineart": "line art"}


def demo_images(per_style: int, seed: int) -> list[tuple[str, bytes]]:
    """(kind, bytes) of the real photos (JPEG) and of ``per_style`` generated scenes of each style (PNG)."""
    return [(f"real: {photo.name}", photo.jpeg()) for photo in REAL_PHOTOS] + scene_images(per_style, seed)


def scene_images(per_style: int, seed: int) -> list[tuple[str, bytes]]:
    """(style, PNG bytes) of ``per_style`` generated scenes of each style; new seeds give new images."""
    images: list[tuple[str, bytes]] = []
    sampler = SceneSampler(seed)
    wanted = {style: per_style for style in STYLES}
    while any(wanted.values()):
        scene = sampler.sample()
        if wanted[scene.style]:
            wanted[scene.style] -= 1
            buffer = io.BytesIO()
            render(scene, seed + len(images)).save(buffer, format="PNG")
            images.append((STYLE_NAMES[scene.style], buffer.getvalue()))
    return images


def run(per_style: int, seed: int, timeout_s: float) -> int:
    """Upload, wait, print; returns 0 when every image was indexed."""
    config = InfraConfig()
    headers = {"X-API-Key": local_api_key(config)}
    ingest = f"http://127.0.0.1:{IngestSettings().port}"
    search_api = f"http://127.0.0.1:{IndexingSettings().port}"
    uploads = []
    for kind, data in demo_images(per_style, seed):
        response = requests.post(f"{ingest}/v1/images", files={"file": ("image", data)}, headers=headers, timeout=60)
        response.raise_for_status()
        uploads.append((kind, response.json()["id"], response.status_code))
    print(f"uploaded {len(uploads)} images ({sum(code == 200 for *_, code in uploads)} already known)", flush=True)

    deadline = time.monotonic() + timeout_s
    statuses: dict[str, dict] = {}
    while time.monotonic() < deadline:
        for _, image_id, _ in uploads:
            statuses[image_id] = requests.get(f"{ingest}/v1/images/{image_id}", headers=headers, timeout=30).json()
        if all(s["status"] in ("indexed", "failed") or s["verdict"] in ("review", "reject") for s in statuses.values()):
            break
        time.sleep(0.5)
    for kind, image_id, _ in uploads:
        status = statuses[image_id]
        print(f"\n{image_id[:12]}  {kind:<16}  status={status['status']}  verdict={status['verdict']}")
        for language in ("en", "ko"):
            caption = status["captions"].get(language)
            if caption:
                print(f"  {language}: {caption['text']}")
        print(f"  keywords: {', '.join(status['keywords'])}")
        print(f"  hashtags: {' '.join(status['hashtags'])}")
        if status.get("text_lines"):
            print(f"  text: {' | '.join(line['text'] for line in status['text_lines'])}")
        if status.get("failure"):
            print(f"  failure: {status['failure']}")

    for query, language in SEARCHES:
        response = requests.get(f"{search_api}/v1/search", params={"q": query, "lang": language, "limit": 3}, headers=headers, timeout=30)
        response.raise_for_status()
        print(f"\nsearch {query!r} ({language}):")
        for hit in response.json()["results"]:
            print(f"  {hit['score']:.4f}  {hit['id'][:12]}  {hit['caption']}")
    indexed = sum(s["status"] == "indexed" for s in statuses.values())
    print(f"\n{indexed}/{len(uploads)} images indexed")
    return 0 if indexed == len(uploads) else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localinfra.demo``."""
    parser = argparse.ArgumentParser(prog="python -m localinfra.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-style", type=int, default=4, help="images of each style (photo, illustration, line art); default 4")
    parser.add_argument("--seed", type=int, default=2026, help="scene seed; the same seed gives the same images (default 2026)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the images to be indexed")
    parser.add_argument("--keep-running", action="store_true", help="leave the servers and services running afterwards")
    args = parser.parse_args(argv)
    started = []
    try:
        config = InfraConfig()
        started = start_missing(config)
        keep = "" if args.keep_running else "; --keep-running leaves it up afterwards"
        print(f"Prometheus with the chart's rules and alerts: {Prometheus(config).url}{keep}", flush=True)
        return run(args.per_style, args.seed, args.timeout)
    finally:
        if not args.keep_running:
            for component in reversed(started):
                component.stop()
                print(f"{component.name}: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
