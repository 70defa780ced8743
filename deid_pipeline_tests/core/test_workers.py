"""Stage worker processes start with the stage modules imported; what lives through a batch is
left out of full collections only while it runs; a worker that dies takes only its own item
with it; their number follows the CPUs the process may use."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
import weakref
from concurrent.futures import ProcessPoolExecutor

import pytest

from deid_pipeline.core import workers
from deid_pipeline.core.workers import (
    PRELOADED,
    WorkerPool,
    available_cpus,
    long_lived_frozen,
    worker_context,
)

FATAL = 13  # the item that kills the process working on it


def doubled(chunk: list[int]) -> list[int]:
    """Runs in a worker: each item twice over, and for FATAL what a segfaulting codec does."""
    if FATAL in chunk:
        os.kill(os.getpid(), signal.SIGKILL)
    return [item * 2 for item in chunk]


class Handed:
    """A result the caller can watch go (a list cannot be weakly referenced)."""

    def __init__(self, items: list[int]) -> None:
        self.items = items


def handed(chunk: list[int]) -> Handed:
    return Handed(chunk)


def doubled_slowly(chunk: list[int]) -> list[int]:
    """Runs in a worker: each item twice over; FATAL stalls as a codec looping in native code
    would."""
    if FATAL in chunk:
        time.sleep(600)
    return [item * 2 for item in chunk]


def imported(names: list[str]) -> dict[str, bool]:
    """Runs in the worker: which of `names` it had imported before it ran anything."""
    return {name: name in sys.modules for name in names}


def test_a_worker_starts_with_the_stage_modules_imported():
    with ProcessPoolExecutor(1, mp_context=worker_context()) as pool:
        seen = pool.submit(imported, PRELOADED).result(timeout=120)
    assert seen == {name: True for name in PRELOADED}


def test_objects_frozen_for_a_block_are_collectable_again_after_it():
    gc.collect()
    with long_lived_frozen():
        assert gc.get_freeze_count() > 0
        cycle: list = []
        cycle.append(cycle)  # garbage made inside the block is collected as usual
        del cycle
        assert gc.collect() >= 1
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("chunk", [1, 4])
def test_an_item_that_kills_its_worker_fails_alone_and_the_rest_come_back_in_order(chunk):
    items = list(range(40))
    chunks = [items[start:start + chunk] for start in range(0, len(items), chunk)]
    pool = WorkerPool(2)

    pairs = list(pool.map(doubled, chunks, crashed=lambda item: ["died"]))

    assert [item for part, _ in pairs for item in part] == items
    results = [result for _, part in pairs for result in part]
    assert results == [item * 2 if item != FATAL else "died" for item in items]
    assert pool.broken_pools >= 1


def test_a_pool_no_worker_of_which_dies_hands_back_each_chunk_as_it_was():
    chunks = [[1, 2], [3], [4, 5, 6]]
    pool = WorkerPool(2)

    assert list(pool.map(doubled, chunks, crashed=lambda item: ["died"])) == [
        ([1, 2], [2, 4]), ([3], [6]), ([4, 5, 6], [8, 10, 12])]
    assert pool.broken_pools == 0


def test_available_cpus_follow_the_affinity_not_the_host():
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert available_cpus() == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert available_cpus() <= len(allowed)


@pytest.mark.parametrize(("cpu_max", "limit"), [("150000 100000", 2), ("50000 100000", 1),
                                                ("max 100000", None)])
def test_available_cpus_follow_a_cgroup_cpu_limit(tmp_path, monkeypatch, cpu_max, limit):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    monkeypatch.setattr(workers, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    allowed = len(os.sched_getaffinity(0))

    assert available_cpus() == min(allowed, limit or allowed)


def test_an_item_that_stalls_its_worker_past_the_deadline_fails_alone(capfd):
    items = list(range(20))
    chunks = [items[start:start + 4] for start in range(0, len(items), 4)]
    pool = WorkerPool(2, deadline_s=1.0)
    started = time.perf_counter()

    pairs = list(pool.map(doubled_slowly, chunks, crashed=lambda item: ["stalled"]))

    assert [result for _, part in pairs for result in part] == [
        item * 2 if item != FATAL else "stalled" for item in items]
    assert time.perf_counter() - started < 60
    assert "most recent call first" not in capfd.readouterr().err  # its stack dump: not shown


def test_results_are_let_go_once_handed_over():
    """A batch of a million files must not hold every chunk's outcome until its end."""
    seen, held = [], []
    for _, result in WorkerPool(2).map(handed, [[index] for index in range(12)],
                                       crashed=lambda item: None):
        seen.append(weakref.ref(result))
        del result
        gc.collect()
        held.append(sum(ref() is not None for ref in seen))  # while the batch goes on
    assert len(held) == 12 and max(held) <= 1
