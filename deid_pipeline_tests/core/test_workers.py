"""Stage worker processes start with the stage modules imported."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

from deid_pipeline.core.workers import PRELOADED, worker_context


def imported(names: list[str]) -> dict[str, bool]:
    """Runs in the worker: which of `names` it had imported before it ran anything."""
    return {name: name in sys.modules for name in names}


def test_a_worker_starts_with_the_stage_modules_imported():
    with ProcessPoolExecutor(1, mp_context=worker_context()) as pool:
        seen = pool.submit(imported, PRELOADED).result(timeout=120)
    assert seen == {name: True for name in PRELOADED}
