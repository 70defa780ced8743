"""Stage worker processes start with the stage modules imported; what lives through a batch is
left out of full collections only while it runs."""

from __future__ import annotations

import gc
import sys
from concurrent.futures import ProcessPoolExecutor

from deid_pipeline.core.workers import PRELOADED, long_lived_frozen, worker_context


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
