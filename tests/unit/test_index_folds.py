"""Folds beside the index writer: preempted folds are tried again, and hold the writer after repeated preemption."""

from __future__ import annotations

import threading

from captioning_common.metrics import PipelineMetrics
from services.indexing.folding import HOLD_AFTER_PREEMPTED, BackgroundFolds
from services.indexing.index_store import FoldPreempted


class ContendedIndex:
    """Due while ``waiting`` rows wait; a fold beside the writer loses to the next ``replays`` writes."""

    def __init__(self, waiting: int, replays: int) -> None:
        self.waiting = waiting
        self.replays = replays
        self.folds: list[bool] = []  # hold_writer of each attempt
        self.folded = threading.Event()

    def fold_due(self) -> bool:
        return self.waiting >= 10

    def fold(self, hold_writer: bool = True) -> None:
        self.folds.append(hold_writer)
        if not hold_writer and self.replays:
            self.replays -= 1
            raise FoldPreempted("Retryable commit conflict: preempted by Update")
        self.waiting = 0
        self.folded.set()


def folds_of(index: ContendedIndex) -> tuple[BackgroundFolds, PipelineMetrics]:
    metrics = PipelineMetrics("indexing")
    return BackgroundFolds(index, metrics), metrics


def test_nothing_is_folded_before_it_is_due() -> None:
    index = ContendedIndex(waiting=9, replays=0)
    folds, _ = folds_of(index)
    assert folds.fold_if_due() is False and index.folds == []


def test_a_fold_runs_beside_the_writer_and_is_timed() -> None:
    index = ContendedIndex(waiting=10, replays=0)
    folds, metrics = folds_of(index)
    assert folds.fold_if_due() is True and index.folds == [False]
    assert metrics.registry.get_sample_value("captioning_stage_seconds_count", {"service": "indexing", "stage": "index_fold"}) == 1


def test_repeated_preemption_makes_the_fold_hold_the_writer() -> None:
    index = ContendedIndex(waiting=10, replays=10)
    folds, metrics = folds_of(index)
    results = [folds.fold_if_due() for _ in range(HOLD_AFTER_PREEMPTED + 1)]
    assert results == [False] * HOLD_AFTER_PREEMPTED + [True]
    assert index.folds == [False] * HOLD_AFTER_PREEMPTED + [True] and index.waiting == 0
    assert metrics.registry.get_sample_value("captioning_errors_total", {"service": "indexing", "reason": "index_fold_preempted"}) == HOLD_AFTER_PREEMPTED
    index.waiting, index.replays = 10, 0
    assert folds.fold_if_due() is True and index.folds[-1] is False  # beside the writer again


def test_asking_folds_on_the_thread_and_a_failed_fold_does_not_stop_it() -> None:
    index = ContendedIndex(waiting=10, replays=0)
    folds, metrics = folds_of(index)
    working = index.fold_due

    def unreachable() -> bool:
        raise OSError("store unreachable")

    index.fold_due = unreachable
    folds.ask()
    failed = {"service": "indexing", "reason": "index_fold_failed"}
    for _ in range(50):
        if metrics.registry.get_sample_value("captioning_errors_total", failed):
            break
        threading.Event().wait(0.1)
    assert metrics.registry.get_sample_value("captioning_errors_total", failed) == 1
    index.fold_due = working
    folds.ask()
    assert index.folded.wait(5) and index.folds == [False]
