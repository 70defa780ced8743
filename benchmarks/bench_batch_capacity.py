"""How many files a second the batch's own process can take in (run on demand).

    .venv/bin/python benchmarks/bench_batch_capacity.py CORPUS [--jobs 2] [--repeat 3] [--out FILE]

`deidentify_tree(CORPUS, ..., jobs=N)` with workers that hand back outcomes without
de-identifying: what is left is the batch's own process (discovery, hand-over, duplicate check,
rename, mapping pairs, audit row groups, tables), which every file passes through. Its files per
second, set against a real run's on as many processes (`bench_tags.py`), say whether that process
or the workers limit a run over many processes.

CORPUS: a folder of DICOM files (`bench_tags.py` copies, for instance). Each worker
de-identifies its first chunk for real; every later file gets a copy of one of those outcomes
with its own SOP Instance UID, output path and UID pair, the same audit rows, and a one-byte
staged file for the batch to rename. Writes benchmarks/results/bench_batch_capacity.json.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deid_pipeline.core import workers  # noqa: E402
from deid_pipeline.core.deid import batch  # noqa: E402
from deid_pipeline.core.deid.audit import audit_batch  # noqa: E402

SECRET = b"benchmark secret, not for production"
_templates: list[tuple[batch.FileOutcome, list]] = []  # a worker's real outcomes and audit rows
_serial = itertools.count()


def stand_in_chunk(sources, engine, dst, redactor=None) -> batch.ChunkOutcome:
    """What `deidentify_chunk` hands back, at the cost of a small file write per file."""
    if not _templates:
        for source in sources:
            outcome = batch.deidentify_file(source, engine, dst, redactor)
            if outcome.result is not None:
                outcome.staged.unlink(missing_ok=True)
                _templates.append((outcome, outcome.result.audit))
    files, rows = [], []
    for index, source in enumerate(sources):
        template, template_rows = _templates[index % len(_templates)]
        outcome = copy.copy(template)
        outcome.relpath = source.relpath
        outcome.instance = f"2.25.{os.getpid()}{next(_serial):09d}"
        outcome.output = f"{Path(template.output).parent}/{outcome.instance}.dcm"
        outcome.staged = dst / f"{outcome.output}.staged"
        outcome.staged.parent.mkdir(parents=True, exist_ok=True)
        outcome.staged.write_bytes(b"\0")
        outcome.result = copy.copy(template.result)
        outcome.result.uid_map = {f"{outcome.instance}.1": outcome.instance}
        outcome.result.audit = []
        outcome.audit_rows = len(template_rows)
        files.append(outcome)
        rows.append((outcome.output, template_rows))
    return batch.ChunkOutcome(files, audit_batch(rows))


if __name__ == Path(__file__).stem:  # imported by the fork server, as a preload
    batch.deidentify_chunk = stand_in_chunk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
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
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    workers.PRELOADED.append(Path(__file__).stem)
    engine = TagEngine(load_policy(), Pseudonymizer(SECRET))
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench_capacity_") as tmp:
            cpu_started, started = os.times(), time.perf_counter()
            report = batch.deidentify_tree(args.corpus, Path(tmp) / "out", Path(tmp) / "work",
                                           engine, jobs=args.jobs)
            seconds, cpu = time.perf_counter() - started, os.times()
        batch_cpu = sum(cpu[:2]) - sum(cpu_started[:2])
        runs.append({"files": report.written, "seconds": round(seconds, 3),
                     "files_per_second": round(report.written / seconds, 1),
                     "batch_cpu_ms_per_file": round(batch_cpu / report.written * 1000, 3)})
        print(f"{report.written} files on {args.jobs} stand-in workers: {seconds:.2f} s, "
              f"{report.written / seconds:.0f} files/s, batch process "
              f"{batch_cpu / report.written * 1000:.3f} CPU ms a file")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "bench_batch_capacity", "jobs": args.jobs,
                                    "cpus": os.cpu_count(), "runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
