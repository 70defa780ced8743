"""Tag-only de-identification of 1,000 files: files per second and peak memory of this project's
engine on one and on several processes, side by side with dicognito on the same files (run on
demand).

    .venv/bin/python benchmarks/bench_tags.py [--files 1000] [--patients 6] [--repeat 1]
                                              [--processes 1,2] [--without-dicognito]
                                              [--seed-corpus DIR] [--profile] [--out FILE]

Input: `generate_corpus` writes a small realistic corpus (`--patients`, seed 0: CT, MR, CR, DX,
MG, US, XA and SC files of ~170 elements with sequences and private blocks, in every writable
transfer syntax), which is copied until there are `--files` files; each copy gets its own UIDs
and Patient ID so that no two files are the same instance. `--seed-corpus` names an already
generated corpus to copy instead (a machine without the codecs that generating one needs).
Copies are made on every CPU.

Each measurement runs in a fresh process that imports its tool, then times only the work:
`deidentify_tree(src, dst, work, engine, jobs=N)` for this project (discovery, the duplicate
scan, de-identification, the leak check of every written file, mapping files, audit table), and
for dicognito what its command line does per file (`dcmread`, `Anonymizer.anonymize`,
`save_as(<SOP Instance UID>.dcm, enforce_file_format=True)`). Peak memory is the peak resident
set size of the measuring process (VmHWM), of its largest worker and of the sum over the process
tree (sampled from /proc every 50 ms; the sampling's own CPU time is not counted); "at start" is
the peak after imports, before the work. CPU seconds count the workers too. Files per second is
wall clock, so it depends on what else the machine runs: the CPU seconds column is the steadier
figure, and `--repeat 3` (tools taking turns, fastest run kept) evens out busy spells.
`--processes` lists the process counts of this project's runs (speed-up and efficiency against
one process are printed); dicognito runs on one. With workers, "start s" is when the fork
server's first worker appeared (the server forks once it has imported the stage modules; within
50 ms) and "after start" the speed-up of the rest of the run: a fixed cost told apart from
throughput. "gc s" is the measuring process's time in the cyclic garbage collector.
`--profile` also runs this project's engine once under cProfile on one process and
prints the 25 most expensive functions. Prints a table and writes
benchmarks/results/bench_tags.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_load import descendants, rss_bytes  # noqa: E402  (the same /proc sampling)

SECRET = b"benchmark secret, not for production"
MB = 2**20
# UIDs under the DICOM root name standard things (SOP classes, transfer syntaxes): never varied.
STANDARD_UID_ROOT = "1.2.840.10008."


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (VmHWM). Not getrusage's ru_maxrss: Linux
    carries that across exec, so a process started by a large one reports the parent's peak."""
    status = Path("/proc/self/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) * 1024 / MB


def fork_server_pid() -> int | None:
    from multiprocessing import forkserver

    return getattr(forkserver._forkserver, "_forkserver_pid", None)  # no public accessor


def workers_cpu_seconds() -> float:
    """CPU seconds of the finished workers of this process's multiprocessing fork server (they
    are the server's children, not this process's; the server reaps each as it ends)."""
    pid = fork_server_pid()
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime


class TreePeak:
    """Samples, every 50 ms until stopped, the resident set size of this process and all its
    descendants (fork-server workers included): the peak of their sum and of the largest one;
    and when the fork server's first worker appeared (the server forks once it has imported
    the stage modules: the pool's start, which every run with workers pays before any file)."""

    def __init__(self) -> None:
        self.tree = self.process = 0
        self.cpu_seconds = 0.0  # the sampling thread's own
        self.first_worker: float | None = None  # time.perf_counter() when first seen
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._running:
            sizes = [rss_bytes(pid) for pid in descendants(os.getpid())]
            self.tree = max(self.tree, sum(sizes))
            self.process = max(self.process, max(sizes[1:], default=0))
            server = fork_server_pid()
            if self.first_worker is None and server and len(descendants(server)) > 1:
                self.first_worker = time.perf_counter()
            self.cpu_seconds = time.thread_time()
            time.sleep(0.05)

    def stop(self) -> None:
        self._running = False
        self._thread.join()


class CollectorTime:
    """Wall seconds this process spends in the cyclic garbage collector until stopped."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)


# -- input ------------------------------------------------------------------------------------


def build_corpus(folder: Path, files: int, patients: int, seed_corpus: Path | None) -> dict:
    """`files` DICOM files under `folder`: copies of a generated corpus (or of `seed_corpus`),
    each copy with its own UIDs and Patient ID."""
    from concurrent.futures import ProcessPoolExecutor

    seed_folder = seed_corpus or folder.parent / "seed_corpus"
    if seed_corpus is None:
        from deid_pipeline.core.synth import generate_corpus

        generate_corpus(seed_folder, patients=patients, seed=0)
    seeds = sorted(seed_folder.rglob("*.dcm"))
    jobs = [(index, seeds, seed_folder, folder) for index in range(files)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        elements = sum(pool.map(_write_copy, jobs, chunksize=16))
    if seed_corpus is None:
        shutil.rmtree(seed_folder)
    size = sum(p.stat().st_size for p in folder.rglob("*.dcm"))
    return {"files": files, "distinct_source_files": len(seeds), "patients_per_copy": patients,
            "megabytes": round(size / MB, 1), "mean_elements_per_file": round(elements / files)}


def _write_copy(job: tuple[int, list[Path], Path, Path]) -> int:
    """Write copy number `index` of its seed file; returns its element count."""
    import pydicom
    from pydicom.uid import generate_uid

    index, seeds, seed_folder, folder = job
    copy, source = divmod(index, len(seeds))
    ds = pydicom.dcmread(seeds[source])
    if copy:
        def vary(dataset, element):
            if element.VR == "UI" and element.VM == 1 and element.value and not str(
                    element.value).startswith(STANDARD_UID_ROOT):
                element.value = generate_uid(entropy_srcs=[str(element.value), str(copy)])

        ds.walk(vary)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = f"{ds.PatientID}-{copy}"
    target = folder / f"copy{copy:03d}" / seeds[source].relative_to(seed_folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return sum(1 for _ in ds.iterall())


# -- one measurement, in its own process --------------------------------------------------------


def measure(tool: str, jobs: int, src: Path, dst: Path, work: Path) -> dict:
    if tool == "deid_pipeline":
        if jobs > 1:
            from deid_pipeline.core.workers import worker_context

            # As `deid-pipeline deid` does: the worker server imports while this process does.
            worker_context()
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
    collector = CollectorTime()
    tree_peak = TreePeak()
    cpu_started, workers_started = os.times(), workers_cpu_seconds()
    started = time.perf_counter()
    written, quarantined = run()
    seconds = time.perf_counter() - started
    collector.stop()
    cpu = os.times()
    tree_peak.stop()
    cpu_seconds = (sum(cpu[:4]) - sum(cpu_started[:4])  # user + system, self + own children
                   + workers_cpu_seconds() - workers_started - tree_peak.cpu_seconds)
    parent_cpu = sum(cpu[:2]) - sum(cpu_started[:2]) - tree_peak.cpu_seconds
    return {"tool": tool, "processes": jobs, "files": written, "quarantined": quarantined,
            "seconds": round(seconds, 3), "files_per_second": round(written / seconds, 1),
            "cpu_seconds": round(cpu_seconds, 3),
            # the measuring process alone: with workers, the hand-over and the batch's own work
            "parent_cpu_seconds": round(parent_cpu, 3),
            # Shares of the run's wall clock spent on CPU: by the measuring process (the batch's
            # own, which every file passes through) and by the workers on average. Workers well
            # under 100 % wait: for work handed out, for the start, for the last chunks.
            "batch_busy": round(parent_cpu / seconds, 3) if jobs > 1 else None,
            "workers_busy": round((cpu_seconds - parent_cpu) / (jobs * seconds), 3)
            if jobs > 1 else None,
            # Seconds until the fork server's first worker appeared (within 50 ms).
            "pool_start_seconds": round(tree_peak.first_worker - started, 2)
            if jobs > 1 and tree_peak.first_worker else None,
            "gc_seconds": round(collector.seconds, 3),  # the measuring process's collector
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_rss_worker_mb": round(tree_peak.process / MB, 1) if jobs > 1 else None,
            "peak_rss_tree_mb": round(tree_peak.tree / MB, 1),
            "rss_at_start_mb": round(at_start, 1)}


def measure_in_subprocess(tool: str, jobs: int, src: Path, scratch: Path) -> dict:
    dst, work = scratch / "out", scratch / "work"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    result = subprocess.run(
        [sys.executable, __file__, "--measure", tool, "--jobs", str(jobs), "--src", str(src),
         "--dst", str(dst), "--work", str(work)],
        capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{tool} on {jobs} process(es) failed:\n{result.stderr[-3000:]}")
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
    header = (f"{'tool':<16}{'procs':>6}{'files':>7}{'seconds':>9}{'files/s':>9}{'speed-up':>9}"
              f"{'cpu s':>8}{'peak MB':>9}{'worker MB':>11}{'tree MB':>9}{'at start MB':>13}")
    header += f"{'batch busy':>12}{'workers busy':>14}{'start s':>9}{'after start':>13}{'gc s':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        worker = f"{r['peak_rss_worker_mb']:.0f}" if r["peak_rss_worker_mb"] else "-"
        speed_up = f"{r['speed_up']:.2f}" if "speed_up" in r else "-"
        busy = [f"{r[key]:.0%}" if r.get(key) is not None else "-"
                for key in ("batch_busy", "workers_busy")]
        lines.append(f"{r['tool']:<16}{r['processes']:>6}{r['files']:>7}{r['seconds']:>9.1f}"
                     f"{r['files_per_second']:>9.1f}{speed_up:>9}{r['cpu_seconds']:>8.1f}"
                     f"{r['peak_rss_mb']:>9.0f}{worker:>11}{r['peak_rss_tree_mb']:>9.0f}"
                     f"{r['rss_at_start_mb']:>13.0f}{busy[0]:>12}{busy[1]:>14}"
                     f"{r.get('pool_start_seconds') or '-':>9}"
                     f"{r.get('speed_up_after_start', '-'):>13}{r['gc_seconds']:>7.2f}")
    return "\n".join(lines)


def installed_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:  # run from a copy of the source, not installed
        return None


def best_of(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["files_per_second"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=6,
                        help="patients of the generated corpus that is copied")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per tool, taking turns; the fastest is kept")
    parser.add_argument("--processes", default="1,2",
                        help="comma-separated process counts for this project's runs")
    parser.add_argument("--without-dicognito", action="store_true",
                        help="only this project's runs (scaling over processes)")
    parser.add_argument("--seed-corpus", type=Path,
                        help="an already generated corpus to copy instead of generating one")
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
        corpus = build_corpus(src, args.files, args.patients, args.seed_corpus)
        print(f"corpus: {corpus['files']} files ({corpus['distinct_source_files']} distinct "
              f"sources, {corpus['megabytes']} MB, ~{corpus['mean_elements_per_file']} "
              f"elements each) built in {time.perf_counter() - started:.0f} s")
        # Repeats take turns, so that a busy spell of the machine does not fall on one tool only.
        plan = [("deid_pipeline", int(n)) for n in args.processes.split(",")]
        plan += [] if args.without_dicognito else [("dicognito", 1)]
        runs = [[measure_in_subprocess(tool, jobs, src, scratch) for tool, jobs in plan]
                for _ in range(args.repeat)]
        results = [best_of(list(same_run)) for same_run in zip(*runs, strict=True)]
        ours_one = next(r for r in results if r["tool"] == "deid_pipeline")
        for r in results:
            if r["tool"] != "deid_pipeline":
                continue
            r["speed_up"] = round(r["files_per_second"] / ours_one["files_per_second"], 2)
            r["efficiency"] = round(r["speed_up"] / (r["processes"] / ours_one["processes"]), 2)
            if r["pool_start_seconds"] is not None:
                # The rest of the run: throughput apart from the pool's fixed start.
                r["speed_up_after_start"] = round(
                    r["files"] / (r["seconds"] - r["pool_start_seconds"])
                    / ours_one["files_per_second"], 2)
        profile = profile_engine(src, scratch) if args.profile else None

    print(table(results))
    ours, theirs = results[0], results[-1]
    ratio = cpu_ratio = None
    if theirs["tool"] == "dicognito":
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
        "versions": {name: installed_version(name)
                     for name in ("pydicom", "dicognito", "deid-pipeline")},
        "corpus": corpus,
        "results": results,
        "speed_ratio_one_process": ratio and round(ratio, 2),
        "cpu_ratio_one_process": cpu_ratio and round(cpu_ratio, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
