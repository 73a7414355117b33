"""Folds of the index's new rows, run beside the writer.

A fold (compaction, both indexes, old versions: ``CaptionIndex.fold``) costs more as the
table grows, and a writer waiting for it delays every image behind it. Here a thread of
its own folds while the stage goes on writing. LanceDB commits the fold unless a write
meanwhile changed rows it rewrote (a replay or a delete); then nothing of it is
committed, and it is tried again after the next upsert. After ``HOLD_AFTER_PREEMPTED``
preemptions in a row the fold holds the writer, so a stream of replays cannot keep new
rows out of the indexes. A process that exits mid-fold leaves only unreferenced files.
"""

from __future__ import annotations

import logging
import threading

from captioning_common.metrics import PipelineMetrics
from services.indexing.index_store import CaptionIndex, FoldPreempted

log = logging.getLogger(__name__)

HOLD_AFTER_PREEMPTED = 3


class BackgroundFolds:
    """Folds ``index`` on a daemon thread whenever asked and due; one fold at a time."""

    def __init__(self, index: CaptionIndex, metrics: PipelineMetrics) -> None:
        self.index = index
        self.metrics = metrics
        self.preempted = 0  # in a row
        self._asked = threading.Event()
        self._thread: threading.Thread | None = None

    def ask(self) -> None:
        """Look whether a fold is due, and run it, on the folding thread (started on the first call)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="index-folds", daemon=True)
            self._thread.start()
        self._asked.set()

    def _run(self) -> None:
        while True:
            self._asked.wait()
            self._asked.clear()
            try:
                self.fold_if_due()
            except Exception:  # the next upsert asks again
                log.exception("index fold failed")
                self.metrics.error("index_fold_failed")

    def fold_if_due(self) -> bool:
        """Fold now if due (beside the writer, or holding it after repeated preemption); True when a fold committed."""
        if not self.index.fold_due():
            return False
        try:
            with self.metrics.time_stage("index_fold"):
                self.index.fold(hold_writer=self.preempted >= HOLD_AFTER_PREEMPTED)
        except FoldPreempted as exc:
            self.preempted += 1
            self.metrics.error("index_fold_preempted")
            log.info("index fold preempted by a write; tried again after the next upsert", extra={"error": str(exc), "in_a_row": self.preempted})
            return False
        self.preempted = 0
        return True
