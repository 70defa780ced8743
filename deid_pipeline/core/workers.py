"""Worker processes for the per-file stages.

forkserver, not fork: the stages run inside Dagster steps, whose threads (ONNX, OpenCV,
Dagster's own) may hold a lock that a fork would copy held. The server imports the stage
modules once before its first worker, so that every worker starts as a fork of an imported
interpreter instead of importing pydicom, pandas, pyarrow and the codecs again: a second of CPU
per worker, which on many cores and a short batch is most of the batch.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

# Everything a worker of either stage runs on.
PRELOADED = ["deid_pipeline.core.deid.batch", "deid_pipeline.core.pixels.batch"]


def worker_context() -> BaseContext:
    """The context for a stage's process pool, its server started: it imports while the caller
    goes on (lists its inputs), not when the first worker is asked for. The preload list is the
    server's: it counts only when set before the server starts (the first pool of the process)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    forkserver.ensure_running()
    return context


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """While the block runs, the collector's full collections skip every object alive when it
    began (the imported modules, pydicom's dictionary, the engine's tables), which they would
    otherwise walk each time (~0.1 s a collection: 0.71 s of collector time in a 2,000-file run
    on one process, 0.13 s frozen; benchmarks/README.md). Those objects are unfrozen after, so
    garbage among them is collected again."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
