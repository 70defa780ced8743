"""Burned-in PHI: quality and speed of the whole pixel stage, end to end per file (read, detect,
decide, redact, write back), with the series pass between deciding and redacting as the batches
run it, in the form of the source system's table.

    .venv/bin/python benchmarks/bench_pixels.py --set dev        # shared/data/burned_in_dev
    .venv/bin/python benchmarks/bench_pixels.py --set synth      # a synthetic corpus (its sidecars)
        [--corpus DIR]          # synth: generate into DIR, or reuse the corpus already there
        [--misses]              # each PHI word not hidden: not detected, judged safe, box too small;
                                # each false alarm: a PHI box on no PHI word, and its reason
    .venv/bin/python benchmarks/bench_pixels.py --set frames [--sizes 512,1024] [--series 30]
        [--repeat 5]                                              # speed and memory by frame size

`frames` times one CT-like 16-bit frame of each size with a demographics banner burned in
(the reader's cache of recognised lines emptied before each run, so every run reads every
line), and a multi-frame series of `--series` frames whose anatomy moves under the same banner
(the cache then reads the banner once, as in a real series). Each case runs in a child process
of its own so that its peak RSS is its own; wall-clock seconds (median, and per frame for the
series) come with CPU seconds, which a busy machine disturbs less.

Writes benchmarks/results/bench_pixels_<set>.json. Run on demand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.pixels.ocr import TextReader
from deid_pipeline.core.pixels.phi import ages_of
from deid_pipeline.core.pixels.redact import fill_boxes, padded
from deid_pipeline.core.pixels.series import SERIES_REASON, SeriesImage, shared_phi, single_frame
from deid_pipeline.core.pixels.stage import BoxFinding, PixelRedactor
from deid_pipeline.core.pixels.views import frame_count, samples_per_pixel
from deid_pipeline.core.transcode import decode_pixels, transfer_syntax_of, write_pixels_back
from deid_pipeline.core.validate.pixel_metrics import (
    HIDDEN_COVERAGE,
    load_truth,
    score_image,
    summarise,
)

ROOT = Path(__file__).resolve().parents[1]
DEV_SET = ROOT.parent / "shared" / "data" / "burned_in_dev"


def files_of(which: str, patients: int, corpus: Path | None = None) -> list[Path]:
    """The set's files; the synthetic corpus is generated into `corpus` (a temporary folder by
    default), or reused from it when it already holds one."""
    if which == "dev":
        return sorted(DEV_SET.glob("*.dcm"))
    from deid_pipeline.core.synth import generate_corpus

    if corpus is not None and any(corpus.rglob("*.dcm")):
        return sorted(corpus.rglob("*.dcm"))
    out = corpus or Path(tempfile.mkdtemp(prefix="bench_pixels_"))
    out.mkdir(parents=True, exist_ok=True)
    generate_corpus(out, patients=patients, seed=1)
    return sorted(out.rglob("*.dcm"))


def misses(path: Path, truth: list, findings: list, shape: tuple[int, int]) -> list[dict]:
    """Each PHI word hidden less than HIDDEN_COVERAGE, and why: no box read over it (the
    detector missed it), boxes read but judged safe, or PHI boxes too small. Reasons only, never
    the text read."""
    rows, columns = shape
    found = []
    for word in (w for w in truth if w.is_phi):
        x1, y1, x2, y2 = word.box
        area = max(1, (min(x2, columns - 1) - x1 + 1) * (min(y2, rows - 1) - y1 + 1))
        mask = np.zeros(shape, bool)
        for box in (padded(f.box, rows, columns) for f in findings if f.is_phi):
            mask[box[1]:box[3] + 1, box[0]:box[2] + 1] = True
        hidden = float(mask[y1:y2 + 1, x1:x2 + 1].sum()) / area
        if hidden >= HIDDEN_COVERAGE:
            continue
        near = [f for f in findings if not (f.box[2] < x1 or x2 < f.box[0] or f.box[3] < y1
                                            or y2 < f.box[1])]
        why = ("not detected" if not near else "judged safe" if not any(f.is_phi for f in near)
               else "box too small")
        found.append({"file": "/".join(path.parts[-3:]), "category": word.category,
                      "box": list(word.box),
                      "hidden": round(hidden, 2), "why": why,
                      "reasons": sorted({f.reason for f in near})})
    return found


def false_alarms(path: Path, truth: list, findings: list) -> list[dict]:
    """Each box judged PHI that overlaps no PHI word (nor a field's label), with its reason and
    what it lies on: a non-PHI word's category, or "no text". Never the text read."""
    found = []
    for finding in (f for f in findings if f.is_phi):
        x1, y1, x2, y2 = finding.box
        under = [w for w in truth if not (w.box[2] < x1 or x2 < w.box[0] or w.box[3] < y1
                                          or y2 < w.box[1])]
        if any(w.is_phi or w.category == "label" for w in under):
            continue
        found.append({"file": "/".join(path.parts[-3:]), "box": list(finding.box),
                      "reason": finding.reason,
                      "on": sorted({w.category for w in under}) or ["no text"]})
    return found


def run(which: str, patients: int, show_misses: bool = False,
        corpus: Path | None = None) -> dict:
    """Each file found (read, detect, decide), then the series pass the batches run
    (core.pixels.series), then each file's boxes filled and written back, and scored. A file's
    seconds are its reading and finding, and its filling and writing (not its second reading,
    which a batch does not do); the series pass's are reported apart."""
    redactor = PixelRedactor(TextReader())
    found, seconds, cpu = {}, {}, {}
    paths = files_of(which, patients, corpus)
    for path in paths:
        started, cpu_started = time.perf_counter(), time.process_time()
        ds = pydicom.dcmread(path)
        result, _ = redactor.find(ds, gather(ds), sex=str(ds.get("PatientSex", "")),
                                  ages=ages_of(ds))
        found[path] = (str(ds.SeriesInstanceUID), result)
        seconds[path] = time.perf_counter() - started
        cpu[path] = time.process_time() - cpu_started
    started = time.perf_counter()
    shared = shared_phi([SeriesImage(str(path), series, tuple(result.phi_boxes))
                         for path, (series, result) in found.items()],
                        single_frame_of, single_frame_of)
    series_seconds = time.perf_counter() - started
    scores, per_modality, missed, alarms = [], defaultdict(list), [], []
    for path in paths:
        result = found[path][1]
        result.findings += [BoxFinding((), box, True, SERIES_REASON, correlation)
                            for box, correlation in shared.get(str(path), ())]
        ds = pydicom.dcmread(path)
        pixels = decode_pixels(ds)  # read and decoded once in a batch: timed in the finding
        started, cpu_started = time.perf_counter(), time.process_time()
        redacted = fill_boxes(pixels, ds, result.phi_boxes) if result.phi_boxes else pixels
        if result.phi_boxes:
            write_pixels_back(ds, redacted, transfer_syntax_of(ds))
        ds.save_as(io.BytesIO(), enforce_file_format=True)
        seconds[path] += time.perf_counter() - started
        cpu[path] += time.process_time() - cpu_started
        shape = (int(ds.Rows), int(ds.Columns))
        changed = np.asarray(pixels != redacted)
        if samples_per_pixel(ds) > 1:
            changed = changed.any(axis=-1)
        if frame_count(pixels, ds) > 1:
            changed = changed.any(axis=0)
        rows, columns = shape
        boxes = [padded(b, rows, columns) for b in result.phi_boxes]
        truth = load_truth(path.with_suffix(".json"))
        score = score_image(truth, boxes, shape, changed)
        scores.append(score)
        if show_misses:
            missed += misses(path, truth, result.findings, shape)
            alarms += false_alarms(path, truth, result.findings)
        per_modality[str(ds.get("Modality", "?"))].append(score)
    summary = summarise(scores)
    summary.update(
        seconds_median=round(statistics.median(seconds.values()), 3),
        seconds_p90=round(sorted(seconds.values())[int(0.9 * (len(seconds) - 1))], 3),
        cpu_seconds_median=round(statistics.median(cpu.values()), 3),
        cpu_seconds_mean=round(statistics.mean(cpu.values()), 3),
        series_pass_seconds=round(series_seconds, 3),
        series_boxes=sum(len(boxes) for boxes in shared.values()),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    return {"set": which, "summary": summary, "misses": missed, "false_alarms": alarms,
            "by_modality": {m: summarise(s) for m, s in sorted(per_modality.items())}}


def single_frame_of(path: str) -> np.ndarray | None:
    return single_frame(Path(path))


BANNER = ("DOE JANE [F] 01.03.2012", "DOB: 12.15.1986", "ID: 4471920")


def frame_file(size: int, frames: int = 1, seed: int = 0) -> bytes:
    """A CT-like file (16-bit, 12 bits stored) of `frames` size × size frames: a body of smooth
    blotches moving from frame to frame, the demographics banner at the maximum in the top
    left corner (cap height about 2 % of the frame), window settings bottom right."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    body = ((xx - size / 2) / (size * 0.42)) ** 2 + ((yy - size / 2) / (size * 0.45)) ** 2 < 1
    blotches = cv2.resize(rng.normal(0, 1, (size // 32 + 8, size // 32 + 8)),
                          (size + 256, size + 256), interpolation=cv2.INTER_CUBIC)
    scale = max(0.4, size / 1300)
    ink = np.zeros((size, size), np.uint8)
    for row, text in enumerate(BANNER):
        cv2.putText(ink, text, (8, round((row + 1) * 38 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, 255, 1 if scale < 0.6 else 2, cv2.LINE_AA)
    cv2.putText(ink, "W:400 L:40", (size - round(300 * scale), size - 12),
                cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1 if scale < 0.6 else 2, cv2.LINE_AA)
    stack = []
    for frame in range(frames):
        shift = 4 * frame
        level = 1000 + 300 * blotches[shift:shift + size, shift:shift + size]
        pixels = np.where(body, level + rng.normal(0, 20, (size, size)), 0)
        pixels = pixels + ink / 255 * (4095 - pixels)
        stack.append(np.clip(pixels, 0, 4095).astype("<u2"))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientSex = "DOE^JANE", "4471920", "F"
    ds.PatientBirthDate, ds.StudyDate, ds.Modality = "19861215", "20120301", "CT"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.stack(stack).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def deidentify_once(data: bytes, redactor: PixelRedactor) -> tuple[float, float, int]:
    """Wall and CPU seconds of the pixel stage on one file held in memory, end to end: parse,
    read, judge, fill, write back, serialise; and the boxes hidden."""
    wall, cpu = time.perf_counter(), time.process_time()
    ds = pydicom.dcmread(io.BytesIO(data))
    result, pixels = redactor.find(ds, gather(ds), sex=str(ds.get("PatientSex", "")),
                                   ages=ages_of(ds))
    if result.phi_boxes:
        write_pixels_back(ds, fill_boxes(pixels, ds, result.phi_boxes), transfer_syntax_of(ds))
    ds.save_as(io.BytesIO(), enforce_file_format=True)
    return time.perf_counter() - wall, time.process_time() - cpu, len(result.phi_boxes)


def frame_case(size: int, frames: int, repeat: int) -> dict:
    """One size (or series) timed in this process: a warm-up, then `repeat` runs."""
    redactor = PixelRedactor(TextReader())
    data = frame_file(size, frames)
    deidentify_once(data, redactor)  # models loaded, caches warm
    walls, cpus, boxes = [], [], 0
    for _ in range(repeat):
        redactor.reader.clear_cache()  # every line read again (a series reads its banner once)
        wall, cpu, boxes = deidentify_once(data, redactor)
        walls.append(wall)
        cpus.append(cpu)
    return {"case": f"{size}x{size}" + (f" x {frames} frames" if frames > 1 else ""),
            "frames": frames, "runs": repeat, "phi_boxes": boxes,
            "seconds_median": round(statistics.median(walls), 3),
            "seconds_min": round(min(walls), 3),
            "cpu_seconds_median": round(statistics.median(cpus), 3),
            "seconds_per_frame_median": round(statistics.median(walls) / frames, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def run_frames(sizes: list[int], series: int, repeat: int) -> dict:
    cases = [(size, 1, repeat) for size in sizes] + ([(512, series, max(1, repeat // 2))]
                                                     if series > 1 else [])
    results = []
    for case in cases:  # one child per case: its peak RSS is the case's own
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.append(pool.submit(frame_case, *case).result())
    load = [round(x, 2) for x in os.getloadavg()]
    return {"set": "frames", "load_average": load, "cases": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["dev", "synth", "frames"], default="dev")
    parser.add_argument("--patients", type=int, default=4, help="synthetic corpus size")
    parser.add_argument("--sizes", default="512,1024", help="frame sizes for --set frames")
    parser.add_argument("--series", type=int, default=30,
                        help="frames of the 512 x 512 series for --set frames (0: none)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per case for --set frames")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="synth: generate the corpus here, or reuse the one already here")
    parser.add_argument("--misses", action="store_true",
                        help="list each PHI word not hidden and why (dev and synth)")
    args = parser.parse_args()
    if args.set == "frames":
        report = run_frames([int(s) for s in args.sizes.split(",")], args.series, args.repeat)
        print(f"load average {report['load_average']}")
        print("| case | boxes hidden | s (median, min) | CPU s | s/frame | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        for c in report["cases"]:
            print(f"| {c['case']} | {c['phi_boxes']} | {c['seconds_median']:.2f}, "
                  f"{c['seconds_min']:.2f} | {c['cpu_seconds_median']:.2f} | "
                  f"{c['seconds_per_frame_median']:.3f} | {c['peak_rss_mb']:.0f} |")
        out = ROOT / "benchmarks" / "results" / "bench_pixels_frames.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        return
    report = run(args.set, args.patients, args.misses, args.corpus)
    s = report["summary"]
    print("| detector | precision | recall | F1 | non-PHI kept | outside unchanged | "
          "s/image (median, p90) | CPU s/image (median, mean) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| deid_pipeline PP-OCRv6 + metadata ({args.set}, {s['images']} images) | "
          f"{s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['non_phi_kept']:.3f} | "
          f"{s['outside_unchanged']:.4f} | {s['seconds_median']:.2f}, {s['seconds_p90']:.2f} | "
          f"{s['cpu_seconds_median']:.2f}, {s['cpu_seconds_mean']:.2f} |")
    for modality, m in report["by_modality"].items():
        print(f"|   {modality} ({m['images']}) | {m['precision']:.3f} | {m['recall']:.3f} | "
              f"{m['f1']:.3f} | {m['non_phi_kept']:.3f} | {m['outside_unchanged']:.4f} | | |")
    print(f"series pass: {s['series_boxes']} boxes added, {s['series_pass_seconds']:.2f} s; "
          f"outside unchanged {s['outside_unchanged']:.5f}")
    for miss in report["misses"]:
        print(f"  miss: {miss['file']} {miss['category']} box {miss['box']} hidden "
              f"{miss['hidden']}: {miss['why']} {miss['reasons']}")
    for alarm in report["false_alarms"]:
        print(f"  false alarm: {alarm['file']} box {alarm['box']} {alarm['reason']} "
              f"on {alarm['on']}")
    out = ROOT / "benchmarks" / "results" / f"bench_pixels_{args.set}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
