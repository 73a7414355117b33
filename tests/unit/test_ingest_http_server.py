"""The upload API behind a real uvicorn: an unwanted streamed body is answered and cut off, not read."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import uvicorn

from tests.chunked_client import stream_upload
from tests.unit.ingest_fakes import png_bytes
from tests.unit.test_ingest_api import UPLOAD, App

FIFTY_MB = 50 * 1024 * 1024


class BodyMeter:
    """Outermost ASGI wrapper: counts the body bytes the application received."""

    def __init__(self, app) -> None:
        self.app, self.received = app, 0

    async def __call__(self, scope, receive, send):
        async def counted():
            message = await receive()
            self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@pytest.fixture()
def served():
    app = App()
    meter = BodyMeter(app.asgi)
    server = uvicorn.Server(uvicorn.Config(meter, host="127.0.0.1", port=0, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, meter, port
    server.should_exit = True
    thread.join(10)


def test_an_unauthenticated_50mb_chunked_upload_gets_401_and_is_not_read(served) -> None:
    app, meter, port = served
    answer, sent = stream_upload(port, {}, FIFTY_MB)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"connection: close" in answer.lower() and b'"unauthorized"' in answer
    assert meter.received == 0
    assert sent < FIFTY_MB // 4, f"the client could send {sent} bytes before the answer"


def test_an_authenticated_chunked_upload_over_the_cap_gets_413_while_streaming(served) -> None:
    app, meter, port = served
    answer, sent = stream_upload(port, UPLOAD, FIFTY_MB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower() and b'"file_too_large"' in answer
    assert meter.received <= app.settings.max_bytes + 64 * 1024 + 512 * 1024  # cut at the first message past the cap
    assert sent < FIFTY_MB // 4 and app.producer.sent == []


def test_normal_uploads_still_work(served) -> None:
    app, _, port = served
    response = requests.post(f"http://127.0.0.1:{port}/v1/images", files={"file": ("a.png", png_bytes())}, headers=UPLOAD, timeout=30)
    assert response.status_code == 202, response.text
    again = requests.post(f"http://127.0.0.1:{port}/v1/images", files={"file": ("a.png", png_bytes())}, headers=UPLOAD, timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "received"
    assert len(app.producer.sent) == 1
