"""A night's partition of 10,000 small images through `deid-pipeline deid --no-pixels`: wall
time, files per second and the peak resident memory of the whole process tree (the command and
its workers), against a target of 1.5 GiB (run on demand).

    .venv/bin/python benchmarks/bench_load.py [--files 10000] [--jobs N] [--dir DIR]
                                              [--dagster [--checks]] [--out FILE]

Input: one realistic 16 x 16 CT image (about 100 elements, sequences, private blocks) copied
`--files` times with its patient, study, series and instance replaced (50 files a patient, 10 a
series; `deid_pipeline_tests.clones`), made once in `--dir` and reused. Memory is sampled from
/proc every 50 ms: the sum of VmRSS over the command and every descendant, and the largest
single process; CPU seconds are those of the command and every descendant, its fork server's
workers included, as last sampled (steadier than wall time on a shared machine; each process's
last 50 ms are missed). `--dagster` also materializes `incoming_dicom`, `dicom_metadata` and
`deidentified_dicom` for the same drop in a child process (in-process executor, ephemeral
instance, the lake in `--dir`) and measures it the same way; `--checks` runs their asset checks
in the same run. Writes benchmarks/results/bench_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deid_pipeline_tests.clones import write_clones  # noqa: E402

MIB = 2**20
TARGET_BYTES = int(1.5 * 2**30)
SAMPLE_SECONDS = 0.05
SECRET = "benchmark secret, not for production"
DAY = "2026-01-15"
# argv: the lake's root, the partition, and "checks" to run the assets' checks too.
DAGSTER_CHILD = """
import sys
from dagster import materialize
from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import dicom_metadata
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.checks.deidentified import deidentified_dicom_checks
from deid_pipeline.checks.incoming import incoming_metadata_checks
from deid_pipeline.resources import DataLake, PseudonymKey
checks = ([incoming_metadata_checks, deidentified_dicom_checks] if sys.argv[3:] == ["checks"]
          else [])
result = materialize([incoming_dicom, dicom_metadata, deidentified_dicom, *checks],
                     partition_key=sys.argv[2],
                     resources={"lake": DataLake(root=sys.argv[1]),
                                "pseudonym_key": PseudonymKey()})
evaluations = result.get_asset_check_evaluations()
print(f"{sum(e.passed for e in evaluations)} of {len(evaluations)} checks passed")
sys.exit(0 if result.success and all(e.passed for e in evaluations) else 1)
"""


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # the process ended between listing and reading
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    """The process's own user and system time so far, in clock ticks (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                # "pid (name) state ppid ...": the name may hold spaces, so split after ")".
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def measure(command: list[str], env: dict[str, str]) -> dict:
    """Run `command`; its wall time, exit status, CPU seconds of its tree, peak summed RSS of
    its tree and peak RSS of its largest process."""
    peaks = {"tree": 0, "process": 0, "processes": 0}
    # Per process ever seen in the tree: its CPU ticks when last seen. The fork server's workers
    # are not the command's children: its own rusage never counts them.
    ticks: dict[int, int] = {}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while process.poll() is None:
            tree = descendants(process.pid)
            ticks.update({pid: used for pid in tree if (used := cpu_ticks(pid))})
            sizes = [rss_bytes(pid) for pid in tree]
            peaks["tree"] = max(peaks["tree"], sum(sizes))
            peaks["process"] = max(peaks["process"], max(sizes, default=0))
            peaks["processes"] = max(peaks["processes"], sum(1 for s in sizes if s))
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    cpu = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    return {"seconds": seconds, "cpu_seconds": cpu, "exit": process.returncode,
            "stdout": stdout.strip(),
            "stderr": stderr.strip()[-2000:], "peak_tree_mib": peaks["tree"] / MIB,
            "peak_process_mib": peaks["process"] / MIB, "processes": peaks["processes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_load")
    parser.add_argument("--dagster", action="store_true")
    parser.add_argument("--checks", action="store_true",
                        help="with --dagster: run the assets' checks in the same run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "bench_load.json")
    args = parser.parse_args()

    drop = args.dir / f"lake_{args.files}" / "incoming" / DAY
    if not drop.is_dir() or sum(1 for _ in drop.rglob("*.dcm")) != args.files:
        started = time.perf_counter()
        write_clones(drop, args.files)
        print(f"wrote {args.files} files in {time.perf_counter() - started:.1f} s to {drop}")
    env = {**os.environ, "DEID_SECRET": SECRET}
    env.pop("DEID_SECRET_FILE", None)
    runs = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        runs["cli"] = measure(
            [sys.executable, "-m", "deid_pipeline.cli", "deid", str(drop), f"{scratch}/out",
             "--work", f"{scratch}/work", "--no-pixels", "--jobs", str(args.jobs)], env)
        if args.dagster:
            runs["dagster"] = measure([sys.executable, "-c", DAGSTER_CHILD,
                                       str(drop.parents[1]), DAY,
                                       *(["checks"] if args.checks else [])], env)
    print(f"{args.files} files, --jobs {args.jobs}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'run':<8} {'exit':>4} {'wall s':>8} {'files/s':>8} {'CPU ms/file':>11} "
          f"{'tree MiB':>9} {'largest MiB':>11} {'procs':>5}  target 1.5 GiB")
    for name, run in runs.items():
        run["files_per_second"] = args.files / run["seconds"]
        run["within_target"] = run["peak_tree_mib"] * MIB < TARGET_BYTES
        print(f"{name:<8} {run['exit']:>4} {run['seconds']:>8.1f} "
              f"{run['files_per_second']:>8.1f} {1000 * run['cpu_seconds'] / args.files:>11.1f} "
              f"{run['peak_tree_mib']:>9.0f} "
              f"{run['peak_process_mib']:>11.0f} {run['processes']:>5}  "
              f"{'ok' if run['within_target'] else 'OVER'}")
        if run["exit"] not in (0, 3):
            print(f"  {name} failed: {run['stderr']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"files": args.files, "jobs": args.jobs,
                                    "cpus": os.cpu_count(), "machine": platform.platform(),
                                    "load_average": os.getloadavg(), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
