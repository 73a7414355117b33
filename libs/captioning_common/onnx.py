"""ONNX Runtime session options shared by every model the pipeline runs on CPU."""

from __future__ import annotations

import onnxruntime as ort


def session_options(threads: int = 0) -> ort.SessionOptions:
    """Options with ``threads`` intra-op threads (0: one per core) that sleep when idle.

    ONNX Runtime's threads spin for a while after each op by default; on a machine that
    Kafka, S3 and the other services share, that spinning takes CPU from them.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options
