"""The declarative topic spec."""

from __future__ import annotations

import pytest

from captioning_common.kafka.topics import dead_letter_topic, load_topics

SPEC = """
[defaults]
partitions = 3
replication_factor = 1
retention_ms = 1000
cleanup_policy = "delete"
dead_letter_retention_ms = 5000

[topics.a]
description = "A"
dead_letter = true

[topics.b]
description = "B"
partitions = 1
cleanup_policy = "compact"
"""


def test_defaults_overrides_and_dead_letter_topics() -> None:
    topics = load_topics(SPEC)
    assert sorted(topics) == ["a", "a.dlq", "b"]
    assert topics["a"].partitions == 3 and topics["a"].config == {"retention.ms": "1000", "cleanup.policy": "delete"}
    assert topics["b"].partitions == 1 and topics["b"].cleanup_policy == "compact"
    assert topics["a.dlq"].retention_ms == 5000 and "could not process" in topics["a.dlq"].description


def test_pipeline_spec_has_a_dead_letter_topic_for_every_consumed_stage_topic() -> None:
    topics = load_topics()
    for consumed in ("images.submitted", "images.uploaded", "captions.generated", "captions.moderated", "moderation.decisions"):
        assert dead_letter_topic(consumed) in topics
    assert all(spec.partitions >= 1 and spec.description for spec in topics.values())


def test_spec_without_description_is_refused() -> None:
    with pytest.raises(KeyError, match="description"):
        load_topics(SPEC.replace('description = "B"', ""))


def test_each_stage_reads_its_inputs_and_outputs_from_the_spec() -> None:
    from captioning_common.kafka.topics import StageTopics
    from captioning_events.v1.caption_pb2 import CaptionGenerated
    from captioning_events.v1.moderation_pb2 import ModerationVerdict, ReviewDecision

    moderation = StageTopics("moderation")
    assert moderation.inputs == {"captions.generated": CaptionGenerated, "moderation.decisions": ReviewDecision}
    assert moderation.output(ModerationVerdict) == "captions.moderated"
    assert moderation.output(ModerationVerdict, role="review_queue") == "moderation.review"
    with pytest.raises(LookupError, match="caption produces ModerationVerdict"):
        StageTopics("caption").output(ModerationVerdict)
    assert load_topics()["images.uploaded.dlq"].producer == "caption"


def test_cluster_sizes_override_the_spec_and_dead_letter_topics_follow_their_topic() -> None:
    from captioning_common.kafka.topics import sized

    topics = sized(load_topics(SPEC), partitions=12, replication_factor=3, per_topic={"a": 24})
    assert (topics["a"].partitions, topics["a.dlq"].partitions, topics["b"].partitions) == (24, 24, 12)
    assert {spec.replication_factor for spec in topics.values()} == {3}
    assert sized(load_topics(SPEC))["b"].partitions == 1
    with pytest.raises(KeyError, match="no such topic in the spec: c"):
        sized(load_topics(SPEC), per_topic={"c": 2})


def test_apply_cli_refuses_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    from captioning_common.kafka.topics import main

    for argv in (["apply", "--topic-partitions", "images.uploaded=0"], ["apply", "--partitions", "0"], ["list", "--topic-partitions", "nope=3"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    main(["list", "--partitions", "12", "--topic-partitions", "images.uploaded=24"])
    listed = capsys.readouterr().out
    assert "images.uploaded.dlq          partitions=24" in listed and "captions.generated           partitions=12" in listed
