"""Kafka plumbing: idempotent producer, batch consumer, topic spec, dead letters."""

from captioning_common.kafka.consumer import BatchConsumer, watermarks
from captioning_common.kafka.dead_letter import dead_letter_for, dead_letter_topic_of
from captioning_common.kafka.producer import Delivery, EventProducer, ProduceError
from captioning_common.kafka.topics import StageTopics, TopicSpec, apply_topics, dead_letter_topic, load_topics

__all__ = [
    "BatchConsumer",
    "Delivery",
    "EventProducer",
    "ProduceError",
    "StageTopics",
    "TopicSpec",
    "apply_topics",
    "dead_letter_for",
    "dead_letter_topic",
    "dead_letter_topic_of",
    "load_topics",
    "watermarks",
]
