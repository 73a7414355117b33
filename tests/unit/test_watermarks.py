"""Watermark queries ride out a partition leader that is still loading or moving, and nothing else."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from captioning_common.kafka import watermarks


class RefusingConsumer:
    """Answers metadata for two partitions; refuses each watermark query with ``errors`` first."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.asked = 0

    def list_topics(self, topic, timeout):
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions={0: None, 1: None})})

    def get_watermark_offsets(self, partition, timeout):
        self.asked += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return (0, 10 + partition.partition)


def test_a_leader_still_loading_is_asked_again() -> None:
    consumer = RefusingConsumer(KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
    assert watermarks(consumer, "images.submitted") == {0: (0, 10), 1: (0, 11)}
    assert consumer.asked == 4


def test_other_refusals_are_raised_at_once() -> None:
    consumer = RefusingConsumer(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException) as raised:
        watermarks(consumer, "images.submitted")
    assert raised.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED and consumer.asked == 1


def test_a_leader_that_never_comes_is_raised_after_the_timeout() -> None:
    consumer = RefusingConsumer(*[KafkaError.NOT_LEADER_FOR_PARTITION] * 1000)
    with pytest.raises(KafkaException):
        watermarks(consumer, "images.submitted", timeout_s=0.3)
    assert 2 <= consumer.asked < 10
