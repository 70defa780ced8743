"""De-identifying a large SVS slide against a plain copy of it: throughput and memory (on demand).

    .venv/bin/python benchmarks/bench_slides.py [--gb 2 | --tiles 1000000] [--tile 256]
        [--dir /tmp/bench_slides] [--label drop|pseudonym] [--repeat 2] [--out FILE]
        [--profile FILE]

Makes a synthetic Aperio slide of about `--gb` gigabytes in `--dir` (kept there and reused by
later runs of the same size; drawn from 64 distinct pre-encoded JPEG tiles repeated, so making it
takes about as long as writing it), or with `--tiles` one of about that many tiles of `--tile`
pixels (say `--tiles 1000000 --tile 16`: a million tiny tiles in a few hundred MB, for the memory
that grows with the tile count), then, `--repeat` times each, alternately:

* **copy**: `shutil.copyfile` of the slide (on Linux an in-kernel copy: no byte passes through
  the process);
* **read/write copy**: the slide read and written in 16 MiB chunks by Python, the floor for any
  program that handles the bytes itself;
* **deid**: `deidentify_slide` with the packaged policy, in a child process, including its
  verification with OpenSlide; the child's peak RSS is its high-water mark (`VmHWM` of
  /proc/self/status; not `getrusage`'s ru_maxrss, which on Linux keeps the parent's peak across
  fork and exec) at the end, its RSS before de-identifying (imports, policy) its `VmRSS` then;
  with `--profile FILE` the last run's child runs under cProfile and writes its stats to FILE.

Before each, the slide's pages are evicted from the page cache (`posix_fadvise DONTNEED`, this
file only), so both read from disk. Each is timed twice: when the call returns (output in the
page cache) and after an fsync of the output (output on disk); the best and the median run of
each are reported, with the median CPU time (user and system, until the call returns), steadier
than wall-clock time on a busy machine. MB/s are 10^6 bytes of input per second. Writes
benchmarks/results/bench_slides.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import tifffile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TILE = 256
TILE_VARIANTS = 64
DOWNSAMPLE = 4
LEVELS = 3
CHUNK = 16 * 2**20
BIGTIFF_FROM = 3.5e9  # bytes: beyond this, classic TIFF offsets may not reach
SECRET = b"benchmark secret, not for production"


def main() -> None:
    args = parse_args()
    if args.child:
        run_child(Path(args.child[0]), Path(args.child[1]), args.label, args.child_profile)
        return
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    slide, generation_s = ensure_slide(work, args.gb, args.tiles, args.tile)
    size = slide.stat().st_size
    print(f"slide: {slide} ({size / 1e9:.2f} GB)")

    copies, chunked, deids = [], [], []
    for run in range(args.repeat):
        evict(slide)
        copies.append(timed_copy(shutil.copyfile, slide, work / "copy.svs"))
        evict(slide)
        chunked.append(timed_copy(chunked_copy, slide, work / "copy.svs"))
        evict(slide)
        profile = args.profile if run == args.repeat - 1 else None
        deids.append(run_deid_in_child(slide, work / "deid", args.label, profile))
        print(f"run {run + 1}: " + ", ".join(
            f"{name} {runs[-1]['seconds']:.2f} s ({runs[-1]['durable_seconds']:.2f} s with fsync, "
            f"{runs[-1]['cpu_seconds']:.2f} CPU s)"
            for name, runs in (("copy", copies), ("read/write", chunked), ("deid", deids)))
            + f", deid peak RSS {deids[-1]['peak_rss_mb']:.0f} MB")
    result = {
        "slide_bytes": size,
        "tiles": tile_count(slide),
        "level0": deids[0]["level0"],
        "levels": LEVELS,
        "tile": args.tile,
        "generation_seconds": generation_s,
        "label_mode": args.label,
        "copy_runs": copies,
        "read_write_copy_runs": chunked,
        "deid_runs": [{k: d[k] for k in ("seconds", "durable_seconds", "cpu_seconds",
                                         "peak_rss_mb", "rss_before_mb")} for d in deids],
        **{f"{name}_mb_per_s{suffix}{statistic}": size / 1e6 / pick(run[key] for run in runs)
           for name, runs in (("copy", copies), ("read_write_copy", chunked), ("deid", deids))
           for suffix, key in (("", "seconds"), ("_fsync", "durable_seconds"))
           for statistic, pick in (("", min), ("_median", statistics.median))},
        **{f"{name}_cpu_seconds_median": statistics.median(run["cpu_seconds"] for run in runs)
           for name, runs in (("copy", copies), ("read_write_copy", chunked), ("deid", deids))},
        "deid_peak_rss_mb": max(d["peak_rss_mb"] for d in deids),
        "deid_rss_before_mb": max(d["rss_before_mb"] for d in deids),
        "output_bytes": deids[0]["output_bytes"],
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    print_table(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=2.0, help="slide size in GB (10^9 bytes)")
    parser.add_argument("--dir", default="/tmp/bench_slides", help="where slides are written")
    parser.add_argument("--tiles", type=int, help="instead of --gb: about this many tiles")
    parser.add_argument("--tile", type=int, default=TILE, help="tile side in pixels")
    parser.add_argument("--label", choices=("drop", "pseudonym"), default="drop")
    parser.add_argument("--profile", help="cProfile the last de-identification into this file")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/bench_slides.json"))
    parser.add_argument("--child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    return parser.parse_args()


def ensure_slide(work: Path, gb: float, tiles: int | None,
                 tile: int) -> tuple[Path, float | None]:
    """The benchmark slide of about `gb` GB (or `tiles` tiles) of `tile` px tiles, made unless
    already there (then no time)."""
    # Imported here: the child that de-identifies should hold no more than the pipeline does.
    from deid_pipeline.core.slides.synth import write_synthetic_slide

    suffix = "" if tile == TILE else f"_{tile}px"
    slide = work / (f"slide_{tiles}tiles{suffix}.svs" if tiles else f"slide_{gb:g}gb{suffix}.svs")
    if slide.exists():
        return slide, None
    pyramid = sum(DOWNSAMPLE ** (-2 * level) for level in range(LEVELS))
    per_tile = mean_tile_bytes(work, tile)
    count = tiles / pyramid if tiles else gb * 1e9 / per_tile / pyramid
    columns = math.ceil(math.sqrt(count * 4 / 3))
    width, height = columns * tile, math.ceil(count / columns) * tile
    size = count * pyramid * per_tile
    print(f"making a {width} x {height} slide of about {size / 1e9:.2f} GB ...")
    started = time.perf_counter()
    partial = slide.with_name(f".{slide.name}.partial")
    write_synthetic_slide(partial, seed=1, patient_name="BENCH MARK", slide_id="B00-00001",
                          date=datetime(2020, 2, 2, 9, 30), width=width, height=height,
                          tile=tile, levels=LEVELS, downsample=DOWNSAMPLE,
                          tile_variants=TILE_VARIANTS, bigtiff=size > BIGTIFF_FROM)
    partial.rename(slide)
    return slide, time.perf_counter() - started


def mean_tile_bytes(work: Path, tile: int) -> float:
    """The mean size of a level-0 tile of a small slide drawn from the same tiles."""
    from deid_pipeline.core.slides.synth import write_synthetic_slide

    probe = work / ".probe.svs"
    side = max(tile * 8, 1024)
    write_synthetic_slide(probe, seed=1, patient_name="PROBE", slide_id="P0", width=side * 4 // 3,
                          height=side, date=datetime(2020, 1, 1), tile=tile, levels=1,
                          tile_variants=TILE_VARIANTS)
    with tifffile.TiffFile(probe) as tif:
        counts = tif.pages[0].databytecounts
        per_tile = sum(counts) / len(counts)
    probe.unlink()
    return per_tile


def tile_count(slide: Path) -> int:
    """Tiles and strips of every page."""
    with tifffile.TiffFile(slide) as tif:
        return sum(len(page.databytecounts) for page in tif.pages)


def evict(path: Path) -> None:
    """Drop this file's pages from the page cache, so that the next read comes from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def chunked_copy(slide: Path, target: Path) -> None:
    with slide.open("rb") as source, target.open("wb") as copy:
        while chunk := source.read(CHUNK):
            copy.write(chunk)


def cpu_seconds() -> float:
    """User and system CPU time of this process so far (an in-kernel copy counts as system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_copy(copy: Callable[[Path, Path], object], slide: Path, target: Path) -> dict:
    started, cpu = time.perf_counter(), cpu_seconds()
    copy(slide, target)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    fsync(target)
    durable = time.perf_counter() - started
    target.unlink()
    return {"seconds": seconds, "durable_seconds": durable, "cpu_seconds": cpu}


def run_deid_in_child(slide: Path, dst: Path, label: str, profile: str | None = None) -> dict:
    shutil.rmtree(dst, ignore_errors=True)
    completed = subprocess.run([sys.executable, __file__, "--label", label, "--child",
                                str(slide), str(dst),
                                *(["--child-profile", profile] if profile else [])],
                               check=True, capture_output=True, text=True)
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    shutil.rmtree(dst, ignore_errors=True)
    return report


def run_child(src: Path, dst: Path, label: str, profile: str | None = None) -> None:
    from deid_pipeline.core.policy.rules import load_policy
    from deid_pipeline.core.pseudonyms import Pseudonymizer
    from deid_pipeline.core.slides.deidentify import deidentify_slide

    settings, pseudonymizer = load_policy().slides, Pseudonymizer(SECRET)
    rss_before_mb = memory_mb("VmRSS")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), cpu_seconds()
    result = deidentify_slide(src, dst, settings, pseudonymizer, label_mode=label)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    fsync(result.output)
    durable = time.perf_counter() - started
    peak_rss_mb = memory_mb("VmHWM")  # before reading back
    with tifffile.TiffFile(result.output) as tif:
        level0 = list(tif.pages[0].shape[:2])
    print(json.dumps({"seconds": seconds, "durable_seconds": durable, "level0": level0,
                      "output_bytes": result.output.stat().st_size,
                      "rss_before_mb": rss_before_mb, "peak_rss_mb": peak_rss_mb,
                      "cpu_seconds": cpu}))


def memory_mb(field: str) -> float:
    """A field of /proc/self/status (VmRSS: now, VmHWM: the peak) in MiB; where there is no
    /proc, the peak as getrusage has it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(result: dict) -> None:
    height, width = result["level0"]
    print()
    print(f"slide {result['slide_bytes'] / 1e9:.2f} GB, {result['tiles']} tiles, level 0 "
          f"{width} x {height}, {result['levels']} levels, {result['tile']} px JPEG tiles, "
          "read from disk")
    print(f"{'MB/s (best, median)':24}{'returned':>14}{'fsynced':>14}{'CPU s':>8}")
    for name, label in (("copy", "shutil.copyfile"), ("read_write_copy", "read/write copy"),
                        ("deid", "deidentify_slide")):
        print(f"{label:24}" + "".join(
            f"{result[f'{name}_mb_per_s{suffix}']:>8.0f}"
            f"{result[f'{name}_mb_per_s{suffix}_median']:>6.0f}" for suffix in ("", "_fsync"))
            + f"{result[f'{name}_cpu_seconds_median']:>8.1f}")
    print(f"deid peak RSS {result['deid_peak_rss_mb']:.0f} MB "
          f"({result['deid_rss_before_mb']:.0f} MB of it before de-identifying)")


if __name__ == "__main__":
    main()
