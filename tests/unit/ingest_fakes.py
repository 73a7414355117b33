"""In-memory stand-ins for the bucket records and the Kafka producer of the ingest service (pure logic tests)."""

from __future__ import annotations

import copy
import io
import threading

from PIL import Image

from captioning_common.kafka.producer import Delivery


def png_bytes(size: tuple[int, int] = (40, 30), shade: int = 128) -> bytes:
    """A small valid PNG; a different ``shade`` gives different bytes (a different image id)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (shade, 64, 32)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeStore:
    """Objects in a dict, under one bucket name; ``create`` keeps what is there."""

    bucket = "test-bucket"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def create(self, key: str, data: bytes, content_type: str = "") -> bool:
        return self.objects.setdefault(key, data) is data


class FakeRecords:
    """ImageRecords semantics (create only if absent, atomically) over a dict; ``gate`` blocks ``all`` until set."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.records: dict[tuple[str, str], dict] = {}
        self.gate: threading.Event | None = None
        self.reading = 0
        self.most_reading = 0
        self._lock = threading.Lock()

    def create(self, image_id: str, stage: str, record: dict) -> bool:
        with self._lock:
            if (image_id, stage) in self.records:
                return False
            self.records[image_id, stage] = copy.deepcopy(record)
            return True

    def put(self, image_id: str, stage: str, record: dict) -> None:
        with self._lock:
            self.records[image_id, stage] = copy.deepcopy(record)

    def get(self, image_id: str, stage: str) -> dict | None:
        with self._lock:
            return copy.deepcopy(self.records.get((image_id, stage)))

    def delete(self, image_id: str, stage: str) -> None:
        with self._lock:
            self.records.pop((image_id, stage), None)

    def all(self, image_id: str) -> dict[str, dict]:
        with self._lock:
            self.reading += 1
            self.most_reading = max(self.most_reading, self.reading)
        try:
            if self.gate is not None:
                self.gate.wait(10)
            with self._lock:
                return {stage: copy.deepcopy(r) for (i, stage), r in self.records.items() if i == image_id}
        finally:
            with self._lock:
                self.reading -= 1


class FakeProducer:
    """Records what was sent; ``fail`` is raised instead of sending; ``gate`` holds every send until set."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, object]] = []
        self.fail: BaseException | None = None
        self.gate: threading.Event | None = None

    def send(self, topic: str, event, key: str, subject: str | None = None, timeout: float | None = None) -> Delivery:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.sent.append((topic, key, event))
        return Delivery(topic, 0, len(self.sent) - 1)

    async def send_async(self, topic: str, event, key: str, subject: str | None = None) -> Delivery:
        return self.send(topic, event, key, subject)
