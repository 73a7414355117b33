"""Replay's source topic is the dead-letter topic's name less `.dlq`, and both must be declared."""

from __future__ import annotations

import pytest

from captioning_common.kafka.replay import source_topic_of


def test_only_a_declared_dead_letter_topic_can_be_replayed() -> None:
    assert source_topic_of("images.uploaded.dlq") == "images.uploaded"
    for name in ("images.uploaded", "test.not-declared.dlq", "captions.indexed.dlq.dlq"):
        with pytest.raises(ValueError, match="not a declared dead-letter topic"):
            source_topic_of(name)
