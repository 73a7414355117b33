"""What a chaos run sends: seeded images through the upload API and as claim-check submissions.

Every item has distinct bytes (its seed and index are written into the file's
metadata), so its id, the SHA-256 of the bytes, is known before it is sent. Most
are generated scenes; a share are printed signs such as "OLD MAN CROSSING": their
caption quotes the text, which guesses a person's age and gender, so with the
``flag`` policy they wait for a reviewer.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from captioner.render import render
from captioner.scenes import SceneSampler

CLAIM_CHECK_SHARE = 0.12
SIGN_SHARE = 0.08
SIGNS = (("OLD MAN", "CROSSING"), ("YOUNG WOMAN", "WANTED"), ("OLD WOMAN", "AT WORK"), ("YOUNG MAN", "ON DUTY"))
SUBMISSION_PREFIX = "incoming/chaos/"


@dataclass(frozen=True)
class Item:
    """One image to send: ``via`` is ``upload`` or ``claim-check``."""

    index: int
    kind: str
    via: str
    data: bytes

    @property
    def image_id(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def client_ref(self) -> str:
        return f"chaos-{self.index}"


def items(seed: int, count: int) -> list[Item]:
    """``count`` items of ``seed``: scenes (PNG) and signs (JPEG), some of each as claim checks."""
    rng = random.Random(seed)
    sampler = SceneSampler(seed)
    made = []
    for index in range(count):
        salt = f"chaos seed {seed} item {index}"
        if rng.random() < SIGN_SHARE:
            kind, data = "sign", _jpeg(_sign(rng.choice(SIGNS)), salt)
        else:
            kind, data = "scene", _png(render(sampler.sample(), seed * 1_000_003 + index), salt)
        via = "claim-check" if rng.random() < CLAIM_CHECK_SHARE else "upload"
        made.append(Item(index, kind, via, data))
    return made


def _sign(lines: tuple[str, ...]) -> Image.Image:
    from perception.tesseract import korean_font_path  # the font Tesseract's install brings

    image = Image.new("RGB", (720, 400), (245, 242, 235))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(korean_font_path()), 64)
    for row, line in enumerate(lines):
        draw.text((50, 90 + row * 130), line, fill=(20, 20, 20), font=font)
    return image


def _png(image: Image.Image, salt: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("chaos", salt)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _jpeg(image: Image.Image, salt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, comment=salt.encode())
    return buffer.getvalue()


@dataclass
class HttpStats:
    """Every answer the clients saw, thread-safe: status codes, connection errors, timeouts."""

    codes: Counter = field(default_factory=Counter)
    connection_errors: int = 0
    timeouts: int = 0
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503, with their bodies
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, response: requests.Response | None, error: str = "") -> None:
        with self._lock:
            if response is not None:
                self.codes[response.status_code] += 1
                if response.status_code >= 500 and response.status_code != 503:
                    self.server_errors.append(f"{response.request.method} {response.url} -> {response.status_code}: {response.text[:300]}")
            elif error == "timeout":
                self.timeouts += 1
            else:
                self.connection_errors += 1

    def as_dict(self) -> dict:
        return {
            "by_status": {str(code): count for code, count in sorted(self.codes.items())},
            "503": self.codes[503],
            "connection_errors": self.connection_errors,
            "timeouts": self.timeouts,
            "other_5xx": len(self.server_errors),
        }


class RetryingClient:
    """HTTP calls retried on 503, any other 5xx, connection errors and timeouts, until ``budget_s`` runs out."""

    def __init__(self, stats: HttpStats, budget_s: float = 240.0) -> None:
        self.stats = stats
        self.budget_s = budget_s
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def call(self, method: str, url: str, **kwargs) -> requests.Response | None:
        """The first answer that is not retryable, or None when the budget ran out."""
        deadline = time.monotonic() + self.budget_s
        delay = 0.2
        while True:
            try:
                response = self._session().request(method, url, timeout=30, **kwargs)
                self.stats.count(response)
                if response.status_code < 500:
                    return response
            except requests.Timeout:
                self.stats.count(None, "timeout")
                self._local.session = requests.Session()
            except requests.ConnectionError:
                self.stats.count(None, "connection")
                self._local.session = requests.Session()
            if time.monotonic() + delay > deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def retry(action: Callable[[], object], budget_s: float, on_error: Callable[[Exception], None]) -> bool:
    """Run ``action`` until it succeeds or ``budget_s`` passed (for S3 puts and Kafka produces)."""
    deadline = time.monotonic() + budget_s
    delay = 0.2
    while True:
        try:
            action()
            return True
        except Exception as exc:  # S3 or Kafka unavailable during a fault
            on_error(exc)
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@dataclass
class Sent:
    """The client's view of one item: the answer it got (``202``, ``200``, ``produced``, ``4xx:...``, ``gave_up``)."""

    item: Item
    outcome: str = ""
    returned_id: str = ""


def send_paced(items_: list[Item], duration_s: float, send: Callable[[Item], Sent], workers: int = 4) -> list[Sent]:
    """Send item i no earlier than i x ``duration_s`` / n seconds from now, ``workers`` at a time."""
    started = time.monotonic()
    step = duration_s / max(1, len(items_))

    def paced(item: Item) -> Sent:
        time.sleep(max(0.0, started + item.index * step - time.monotonic()))
        return send(item)

    with ThreadPoolExecutor(workers, thread_name_prefix="client") as pool:
        return list(pool.map(paced, items_))
