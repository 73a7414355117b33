"""Every ONNX Runtime session the pipeline runs lets its threads sleep between calls."""

from __future__ import annotations

from captioning_common.onnx import session_options
from services.moderation.image_classifier import NudeNetClassifier

SPINNING = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")


def test_session_options_turn_spinning_off_and_keep_the_thread_count() -> None:
    options = session_options(3)
    assert options.intra_op_num_threads == 3
    assert [options.get_session_config_entry(entry) for entry in SPINNING] == ["0", "0"]


def test_the_nudenet_session_is_built_with_them() -> None:
    options = NudeNetClassifier()._session.get_session_options()
    assert [options.get_session_config_entry(entry) for entry in SPINNING] == ["0", "0"]
