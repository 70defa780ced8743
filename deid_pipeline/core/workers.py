"""Worker processes for the per-file stages.

forkserver, not fork: the stages run inside Dagster steps, whose threads (ONNX, OpenCV,
Dagster's own) may hold a lock that a fork would copy held. The server imports the stage
modules once before its first worker, so that every worker starts as a fork of an imported
interpreter instead of importing pydicom, pandas, pyarrow and the codecs again: a second of CPU
per worker, which on many cores and a short batch is most of the batch. A worker that dies or
stalls takes only the file it died on with it (`WorkerPool`).
"""

from __future__ import annotations

import faulthandler
import gc
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Generic, TypeVar

# Everything a worker of any stage runs on.
PRELOADED = ["deid_pipeline.core.deid.batch", "deid_pipeline.core.pixels.batch",
             "deid_pipeline.core.tree_metadata"]
# How long a worker may spend on one chunk (and, alone, on one file) before it is ended as
# stalled (a codec looping for ever on a malformed file): far beyond a real chunk (OCR of a long
# multi-frame series takes minutes; a chunk that still runs over is only retried file by file),
# short of a night.
DEADLINE_S = 30 * 60
# The quarantine reason of a file whose worker process died on it, alone.
WORKER_DIED = (f"its process died (a crash in native code, out of memory, or stalled "
               f"{DEADLINE_S // 60} minutes)")
# A cgroup v2 CPU limit ("quota period" in microseconds, or "max period"): a Kubernetes CPU
# limit, `docker run --cpus`.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus() -> int:
    """The CPUs this process may use, not the host's: its affinity (a task set, a container's
    cpuset) and its cgroup's CPU limit. Workers or threads sized by the host's count
    oversubscribe a pod limited to two CPUs, and each worker holds its own memory."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity outside Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()
        cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # no cgroup v2 file here, or "max": no limit
        pass
    return max(1, cpus)


def worker_context() -> BaseContext:
    """The context for a stage's process pool, its server started: it imports while the caller
    goes on (lists its inputs), not when the first worker is asked for. The preload list is the
    server's: it counts only when set before the server starts (the first pool of the process)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    forkserver.ensure_running()
    return context


_discarded = None  # where a stalled worker's stack dump goes: never to the user's terminal


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """In a worker process: the process ends if the block has not finished within `seconds`,
    even stuck in native code, and WorkerPool takes it for a worker that died. None: no end.
    Never in a process that must outlive its work (the batch's own)."""
    global _discarded
    if seconds is None:
        yield
        return
    if _discarded is None:
        _discarded = open(os.devnull, "w")  # noqa: SIM115 - for the life of the worker
    faulthandler.dump_traceback_later(seconds, exit=True, file=_discarded)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


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


Item = TypeVar("Item")
Result = TypeVar("Result")
Chunk = list  # a list of items handed to one worker at a time


@dataclass
class WorkerPool(Generic[Item, Result]):
    """`jobs` processes from the worker server, each set up by `initializer(*initargs)`, that
    survive a worker's death.

    A worker that dies (a crash in native code such as a codec, the kernel's memory limit, the
    end of a `deadline`) breaks the whole pool: its other workers are stopped and every chunk not
    yet finished fails. The results finished beside it are kept; the chunks that may have been
    running are run again, each alone in a process of its own, and a chunk that dies again item
    by item, so that `crashed(item)` stands for the one item that kills its own process and the
    rest of the batch goes on in a new pool. `broken_pools` counts the breaks: a stopped worker
    may have left hidden temporary files behind."""

    jobs: int
    initializer: Callable[..., None] | None = None
    initargs: tuple = ()
    deadline_s: float | None = DEADLINE_S  # a worker's time for one chunk before it is ended
    broken_pools: int = 0

    def map(self, work: Callable[[Chunk], Result], chunks: Sequence[Chunk],
            crashed: Callable[[Item], Result]) -> Iterator[tuple[Chunk, Result]]:
        """(chunk, work(chunk)) for each chunk, in order; after a break a chunk may come back as
        several one-item chunks, an item that killed its process with `crashed(item)`."""
        work = partial(_within_deadline, self.deadline_s, work)
        finished: dict[int, list[tuple[Chunk, Result]]] = {}
        position = 0  # the first chunk not yet yielded
        while position < len(chunks):
            with self._pool(self.jobs) as pool:
                futures = self._submit(pool, work, chunks, position, finished)
                try:
                    for index in range(position, len(chunks)):
                        if index not in finished:
                            finished[index] = [(chunks[index], self._result(futures, index))]
                        yield from finished.pop(index)
                        position = index + 1
                except BrokenProcessPool:
                    self.broken_pools += 1
                    finished.update({index: [(chunks[index], future.result())]
                                     for index, future in futures.items()
                                     if future.done() and not future.cancelled()
                                     and future.exception() is None})
                finally:
                    pool.shutdown(cancel_futures=True)
            # The pool hands out chunks in order, at most one more than it has workers: the one
            # that broke it is among the first unfinished.
            suspects = [index for index in range(position, len(chunks))
                        if index not in finished][:self.jobs + 1]
            for index in suspects:
                finished[index] = self._alone(work, chunks[index], crashed)

    def _pool(self, jobs: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(jobs, mp_context=worker_context(),
                                   initializer=self.initializer, initargs=self.initargs)

    @staticmethod
    def _submit(pool: ProcessPoolExecutor, work: Callable[[Chunk], Any], chunks: Sequence[Chunk],
                position: int, finished: dict) -> dict[int, Future]:
        futures: dict[int, Future] = {}
        try:
            for index in range(position, len(chunks)):
                if index not in finished:
                    futures[index] = pool.submit(work, chunks[index])
        except BrokenProcessPool:
            pass  # broken while handing out: what was not handed out waits for the next pool
        return futures

    @staticmethod
    def _result(futures: dict[int, Future], index: int) -> Any:
        """The chunk's result, its future let go: what was handed back is held once, by the
        caller, and memory does not grow with the batch."""
        if index not in futures:
            raise BrokenProcessPool("the pool broke before this chunk was handed out")
        return futures.pop(index).result()

    def _alone(self, work: Callable[[Chunk], Result], chunk: Chunk,
               crashed: Callable[[Item], Result]) -> list[tuple[Chunk, Result]]:
        try:
            with self._pool(1) as pool:
                return [(chunk, pool.submit(work, chunk).result())]
        except BrokenProcessPool:
            if len(chunk) == 1:
                return [(chunk, crashed(chunk[0]))]
            return [pair for item in chunk for pair in self._alone(work, [item], crashed)]


def _within_deadline(seconds: float | None, work: Callable[[Chunk], Result],
                     chunk: Chunk) -> Result:
    with deadline(seconds):
        return work(chunk)
