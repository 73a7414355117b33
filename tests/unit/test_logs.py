"""Structured JSON logs with the image id as correlation id."""

from __future__ import annotations

import json
import logging

from captioning_common.logs import JsonFormatter, image_context


def render(record_factory) -> dict:
    formatter = JsonFormatter("caption")
    records = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(formatter.format(record))

    logger = logging.getLogger("tests.logs")
    handler = Capture()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        record_factory(logger)
    finally:
        logger.removeHandler(handler)
    return json.loads(records[-1])


def test_image_id_from_context_and_extras() -> None:
    def emit(logger):
        with image_context("f00d"):
            logger.info("captioned %s", "ok", extra={"batch_size": 8})

    entry = render(emit)
    assert entry["message"] == "captioned ok"
    assert entry["image_id"] == "f00d"
    assert entry["batch_size"] == 8
    assert entry["service"] == "caption" and entry["level"] == "INFO"


def test_context_is_restored_and_exceptions_are_kept() -> None:
    def emit(logger):
        with image_context("a"):
            pass
        try:
            raise ValueError("bad image")
        except ValueError:
            logger.exception("failed")

    entry = render(emit)
    assert "image_id" not in entry
    assert "ValueError: bad image" in entry["exception"]
