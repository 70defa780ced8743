"""How many files a second the batch's own process can take in (run on demand).

    .venv/bin/python benchmarks/bench_batch_capacity.py CORPUS [--jobs 2] [--repeat 3]
        [--file-ms MS] [--dir DIR] [--out FILE]

`deidentify_tree(CORPUS, ..., jobs=N)` with workers that hand back outcomes without
de-identifying: what is left is the batch's own process (discovery, hand-over, duplicate check,
rename, mapping pairs, audit row groups, tables), which every file passes through. Its files per
second, set against a real run's on as many processes (`bench_tags.py`), say whether that process
or the workers limit a run over many processes.

CORPUS: a folder of DICOM files (`bench_tags.py` copies, for instance). Each worker
de-identifies its first chunk for real; every later file gets a copy of one of those outcomes
with its own SOP Instance UID, output path and UID pair, the same audit rows, and a one-byte
staged file for the batch to rename. With `--file-ms`, each stand-in also takes MS milliseconds a
file, asleep: workers that take a real run's time without its CPU, so that many of them fit on a
machine of few cores and the batch's process is measured handing out and taking in at the pace
of many cores (its files per second against `jobs * 1000 / MS`). Outputs go to a temporary
folder in `--dir` (tmpfs, /dev/shm, takes the disk's cost of creating and renaming files out
of the measure). Writes benchmarks/results/bench_batch_capacity.json.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deid_pipeline.core import workers  # noqa: E402
from deid_pipeline.core.deid import batch  # noqa: E402
from deid_pipeline.core.deid.audit import SCHEMA, audit_batch  # noqa: E402

SECRET = b"benchmark secret, not for production"
_templates: list[tuple[batch.FileOutcome, list]] = []  # a worker's real outcomes and audit rows
_serial = itertools.count()
_audit_batches: dict[int, pa.RecordBatch] = {}  # a chunk's rows by its size, the names swapped in
_folders: set[Path] = set()
# Milliseconds a stand-in takes per file, asleep (--file-ms; the environment reaches the workers).
FILE_MS = float(os.environ.get("BENCH_FILE_MS", "0"))


def stand_in_chunk(sources, engine, dst, redactor=None) -> batch.ChunkOutcome:
    """What `deidentify_chunk` hands back, at the cost of a small file write per file (the audit
    batch made once for each chunk size, the files' names put in its file column)."""
    started = time.perf_counter()
    if not _templates:
        for source in sources:
            outcome = batch.deidentify_file(source, engine, dst, redactor)
            if outcome.result is not None:
                outcome.staged.unlink(missing_ok=True)
                _templates.append((outcome, outcome.result.audit))
    files = []
    for index, source in enumerate(sources):
        template, template_rows = _templates[index % len(_templates)]
        outcome = copy.copy(template)
        outcome.relpath = source.relpath
        outcome.instance = f"2.25.{os.getpid()}{next(_serial):09d}"
        outcome.output = f"{Path(template.output).parent}/{outcome.instance}.dcm"
        outcome.staged = dst / f"{outcome.output}.staged"
        if outcome.staged.parent not in _folders:
            outcome.staged.parent.mkdir(parents=True, exist_ok=True)
            _folders.add(outcome.staged.parent)
        outcome.staged.write_bytes(b"\0")
        outcome.result = copy.copy(template.result)
        outcome.result.uid_map = {f"{outcome.instance}.1": outcome.instance}
        outcome.result.audit = []
        outcome.audit_rows = len(template_rows)
        files.append(outcome)
    if len(sources) not in _audit_batches:
        _audit_batches[len(sources)] = audit_batch(
            [(f"{index}", _templates[index % len(_templates)][1]) for index in range(len(sources))])
    audit = _audit_batches[len(sources)]
    names = pa.DictionaryArray.from_arrays(audit.column(0).indices,
                                           pa.array([outcome.output for outcome in files]))
    chunk = batch.ChunkOutcome(files, pa.RecordBatch.from_arrays([names, *audit.columns[1:]],
                                                                 schema=SCHEMA))
    time.sleep(max(0.0, FILE_MS / 1000 * len(sources) - (time.perf_counter() - started)))
    return chunk


if __name__ == Path(__file__).stem:  # imported by the fork server, as a preload
    batch.deidentify_chunk = stand_in_chunk


class TallyTimes:
    """When the batch's process took in its first and its last chunk: the pool's start apart from
    the pace after it."""

    def __init__(self) -> None:
        self.times: list[float] = []
        add = batch._Tally.add

        def timed_add(tally, sources, *rest):
            add(tally, sources, *rest)
            self.times.append(time.perf_counter())

        batch._Tally.add = timed_add

    def pace(self, files: int) -> tuple[float, float]:
        """Seconds to the first chunk from `started`, files a second after it."""
        first, last = self.times[0], self.times[-1]
        return first, (files - batch.CHUNK) / (last - first) if last > first else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--file-ms", type=float, default=0.0,
                        help="milliseconds each stand-in worker takes a file, asleep")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the outputs go (default: the system's temporary folder)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/bench_batch_capacity.json")
    args = parser.parse_args()
    if args.jobs < 2:
        parser.error("--jobs: at least 2 (one process has no hand-over)")

    from deid_pipeline.core.deid.engine import TagEngine
    from deid_pipeline.core.policy.rules import load_policy
    from deid_pipeline.core.pseudonyms import Pseudonymizer

    # The fork server is a new interpreter: it finds this module through PYTHONPATH (Python 3.11
    # does not hand it this process's sys.path).
    os.environ["BENCH_FILE_MS"] = str(args.file_ms)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    workers.PRELOADED.append(Path(__file__).stem)
    engine = TagEngine(load_policy(), Pseudonymizer(SECRET))
    runs = []
    ideal = args.jobs * 1000 / args.file_ms if args.file_ms else None
    tallies = TallyTimes()
    for _ in range(args.repeat):
        tallies.times.clear()
        with tempfile.TemporaryDirectory(prefix="bench_capacity_", dir=args.dir) as tmp:
            cpu_started, started = os.times(), time.perf_counter()
            report = batch.deidentify_tree(args.corpus, Path(tmp) / "out", Path(tmp) / "work",
                                           engine, jobs=args.jobs)
            seconds, cpu = time.perf_counter() - started, os.times()
        batch_cpu = sum(cpu[:2]) - sum(cpu_started[:2])
        first, pace = tallies.pace(report.written)
        runs.append({"files": report.written, "seconds": round(seconds, 3),
                     "files_per_second": round(report.written / seconds, 1),
                     "first_chunk_seconds": round(first - started, 3),
                     "files_per_second_after_first_chunk": round(pace, 1),
                     "batch_cpu_ms_per_file": round(batch_cpu / report.written * 1000, 3)})
        print(f"{report.written} files on {args.jobs} stand-in workers: {seconds:.2f} s, "
              f"{report.written / seconds:.0f} files/s; first chunk at {first - started:.2f} s, "
              f"{pace:.0f} files/s after it" + (f" ({pace / ideal:.0%} of the workers' "
                                                  f"{ideal:.0f})" if ideal else "")
              + f"; batch process {batch_cpu / report.written * 1000:.3f} CPU ms a file")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "bench_batch_capacity", "jobs": args.jobs,
                                    "file_ms": args.file_ms,
                                    "cpus": os.cpu_count(), "runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
