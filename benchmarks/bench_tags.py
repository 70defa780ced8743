"""Tag-only de-identification of 1,000 files: files per second and peak memory of this project's
engine on one and on two processes, side by side with dicognito on the same files (run on demand).

    .venv/bin/python benchmarks/bench_tags.py [--files 1000] [--patients 6] [--repeat 1]
                                              [--profile] [--out FILE]

Input: `generate_corpus` writes a small realistic corpus (`--patients`, seed 0: CT, MR, CR, DX,
MG, US, XA and SC files of ~170 elements with sequences and private blocks, in every writable
transfer syntax), which is copied until there are `--files` files; each copy gets its own UIDs
and Patient ID so that no two files are the same instance.

Each measurement runs in a fresh process that imports its tool, then times only the work:
`deidentify_tree(src, dst, work, engine, jobs=N)` for this project (discovery, the duplicate
scan, de-identification, the leak check of every written file, mapping files, audit table), and
for dicognito what its command line does per file (`dcmread`, `Anonymizer.anonymize`,
`save_as(<SOP Instance UID>.dcm, enforce_file_format=True)`). Peak memory is the peak resident
set size of the measuring process (VmHWM) and, for two processes, of its largest worker
(`getrusage`); "at start" is the peak after imports, before the work. Files per second is wall
clock, so it depends on what else the machine runs: the CPU seconds column is the steadier
figure, and `--repeat 3` (tools taking turns, fastest run kept) evens out busy spells.
`--profile` also runs this project's engine once under cProfile on one process and prints the
25 most expensive functions. Prints a table and writes benchmarks/results/bench_tags.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = b"benchmark secret, not for production"
MB = 2**20
# UIDs under the DICOM root name standard things (SOP classes, transfer syntaxes): never varied.
STANDARD_UID_ROOT = "1.2.840.10008."
RUNS = (("deid_pipeline", 1), ("deid_pipeline", 2), ("dicognito", 1))


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (VmHWM). Not getrusage's ru_maxrss: Linux
    carries that across exec, so a process started by a large one reports the parent's peak."""
    status = Path("/proc/self/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) * 1024 / MB


def peak_rss_of_workers_mb() -> float:
    """The largest peak resident set size among this process's finished workers (forked, not
    exec'd, so getrusage is right here)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / MB  # KiB on Linux


# -- input ------------------------------------------------------------------------------------


def build_corpus(folder: Path, files: int, patients: int) -> dict:
    """`files` DICOM files under `folder`: copies of a generated corpus, each copy with its own
    UIDs and Patient ID."""
    import pydicom
    from pydicom.uid import generate_uid

    from deid_pipeline.core.synth import generate_corpus

    seed_folder = folder.parent / "seed_corpus"
    generate_corpus(seed_folder, patients=patients, seed=0)
    seeds = sorted(seed_folder.rglob("*.dcm"))
    elements = 0
    for index in range(files):
        copy, source = divmod(index, len(seeds))
        ds = pydicom.dcmread(seeds[source])
        if copy:
            def vary(dataset, element, copy=copy):
                if element.VR == "UI" and element.VM == 1 and element.value and not str(
                        element.value).startswith(STANDARD_UID_ROOT):
                    element.value = generate_uid(entropy_srcs=[str(element.value), str(copy)])

            ds.walk(vary)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = f"{ds.PatientID}-{copy}"
        elements += sum(1 for _ in ds.iterall())
        target = folder / f"copy{copy:03d}" / seeds[source].relative_to(seed_folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
    shutil.rmtree(seed_folder)
    size = sum(p.stat().st_size for p in folder.rglob("*.dcm"))
    return {"files": files, "distinct_source_files": len(seeds), "patients_per_copy": patients,
            "megabytes": round(size / MB, 1), "mean_elements_per_file": round(elements / files)}


# -- one measurement, in its own process --------------------------------------------------------


def measure(tool: str, jobs: int, src: Path, dst: Path, work: Path) -> dict:
    if tool == "deid_pipeline":
        from deid_pipeline.core.deid.batch import deidentify_tree
        from deid_pipeline.core.deid.engine import TagEngine
        from deid_pipeline.core.policy.rules import load_policy
        from deid_pipeline.core.pseudonyms import Pseudonymizer

        engine = TagEngine(load_policy(), Pseudonymizer(SECRET))

        def run() -> tuple[int, int]:
            report = deidentify_tree(src, dst, work, engine, jobs=jobs)
            return report.written, report.quarantined
    else:
        import pydicom
        from dicognito.anonymizer import Anonymizer

        anonymizer = Anonymizer(seed="benchmark")

        def run() -> tuple[int, int]:
            dst.mkdir(parents=True)
            written = 0
            for path in sorted(src.rglob("*.dcm")):
                with pydicom.dcmread(path, force=False) as ds:
                    anonymizer.anonymize(ds)
                    ds.save_as(dst / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
                written += 1
            return written, 0

    at_start = peak_rss_mb()
    cpu_started, started = os.times(), time.perf_counter()
    written, quarantined = run()
    seconds = time.perf_counter() - started
    cpu = os.times()
    cpu_seconds = sum(cpu[:4]) - sum(cpu_started[:4])  # user + system, self + workers
    return {"tool": tool, "processes": jobs, "files": written, "quarantined": quarantined,
            "seconds": round(seconds, 3), "files_per_second": round(written / seconds, 1),
            "cpu_seconds": round(cpu_seconds, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_rss_worker_mb": round(peak_rss_of_workers_mb(), 1) if jobs > 1 else None,
            "rss_at_start_mb": round(at_start, 1)}


def measure_in_subprocess(tool: str, jobs: int, src: Path, scratch: Path) -> dict:
    dst, work = scratch / "out", scratch / "work"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    result = subprocess.run(
        [sys.executable, __file__, "--measure", tool, "--jobs", str(jobs), "--src", str(src),
         "--dst", str(dst), "--work", str(work)],
        capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def profile_engine(src: Path, scratch: Path) -> str:
    import cProfile
    import io
    import pstats

    from deid_pipeline.core.deid.batch import deidentify_tree
    from deid_pipeline.core.deid.engine import TagEngine
    from deid_pipeline.core.policy.rules import load_policy
    from deid_pipeline.core.pseudonyms import Pseudonymizer

    engine = TagEngine(load_policy(), Pseudonymizer(SECRET))
    profiler = cProfile.Profile()
    profiler.runcall(deidentify_tree, src, scratch / "profile_out", scratch / "profile_work",
                     engine, jobs=1)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    return text.getvalue()


# -- report -----------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    header = (f"{'tool':<16}{'procs':>6}{'files':>7}{'seconds':>9}{'files/s':>9}{'cpu s':>8}"
              f"{'peak MB':>9}{'worker MB':>11}{'at start MB':>13}")
    lines = [header, "-" * len(header)]
    for r in results:
        worker = f"{r['peak_rss_worker_mb']:.0f}" if r["peak_rss_worker_mb"] else "-"
        lines.append(f"{r['tool']:<16}{r['processes']:>6}{r['files']:>7}{r['seconds']:>9.1f}"
                     f"{r['files_per_second']:>9.1f}{r['cpu_seconds']:>8.1f}"
                     f"{r['peak_rss_mb']:>9.0f}{worker:>11}{r['rss_at_start_mb']:>13.0f}")
    return "\n".join(lines)


def best_of(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["files_per_second"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=6,
                        help="patients of the generated corpus that is copied")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per tool, taking turns; the fastest is kept")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bench_tags.json")
    parser.add_argument("--measure", choices=["deid_pipeline", "dicognito"],
                        help=argparse.SUPPRESS)  # internal: one measurement in this process
    parser.add_argument("--jobs", type=int, default=1, help=argparse.SUPPRESS)
    for internal in ("--src", "--dst", "--work"):
        parser.add_argument(internal, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        print(json.dumps(measure(args.measure, args.jobs, args.src, args.dst, args.work)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench_tags_") as tmp:
        scratch = Path(tmp)
        src = scratch / "corpus"
        started = time.perf_counter()
        corpus = build_corpus(src, args.files, args.patients)
        print(f"corpus: {corpus['files']} files ({corpus['distinct_source_files']} distinct "
              f"sources, {corpus['megabytes']} MB, ~{corpus['mean_elements_per_file']} "
              f"elements each) built in {time.perf_counter() - started:.0f} s")
        # Repeats take turns, so that a busy spell of the machine does not fall on one tool only.
        runs = [[measure_in_subprocess(tool, jobs, src, scratch) for tool, jobs in RUNS]
                for _ in range(args.repeat)]
        results = [best_of(list(same_run)) for same_run in zip(*runs, strict=True)]
        profile = profile_engine(src, scratch) if args.profile else None

    print(table(results))
    ours, theirs = results[0], results[2]
    ratio = ours["files_per_second"] / theirs["files_per_second"]
    cpu_ratio = theirs["cpu_seconds"] / ours["cpu_seconds"]
    print(f"deid_pipeline on one process: {ratio:.2f}x dicognito's files/s "
          f"({cpu_ratio:.2f}x by CPU seconds)")
    if profile:
        print(profile)
    report = {
        "benchmark": "bench_tags",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "versions": {name: version(name) for name in ("pydicom", "dicognito", "deid-pipeline")},
        "corpus": corpus,
        "results": results,
        "speed_ratio_one_process": round(ratio, 2),
        "cpu_ratio_one_process": round(cpu_ratio, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
