"""Burned-in PHI: quality and speed of the whole pixel stage, end to end per file (read, detect,
decide, redact, write back), in the form of the source system's table.

    .venv/bin/python benchmarks/bench_pixels.py --set dev        # shared/data/burned_in_dev
    .venv/bin/python benchmarks/bench_pixels.py --set synth      # a synthetic corpus (its sidecars)

Writes benchmarks/results/bench_pixels_<set>.json. Run on demand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom

from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.pixels.ocr import TextReader
from deid_pipeline.core.pixels.phi import ages_of
from deid_pipeline.core.pixels.redact import fill_boxes, padded
from deid_pipeline.core.pixels.stage import PixelRedactor
from deid_pipeline.core.pixels.views import frame_count, samples_per_pixel
from deid_pipeline.core.transcode import transfer_syntax_of, write_pixels_back
from deid_pipeline.core.validate.pixel_metrics import load_truth, score_image, summarise

ROOT = Path(__file__).resolve().parents[1]
DEV_SET = ROOT.parent / "shared" / "data" / "burned_in_dev"


def files_of(which: str, patients: int) -> list[Path]:
    if which == "dev":
        return sorted(DEV_SET.glob("*.dcm"))
    from deid_pipeline.core.synth import generate_corpus

    out = Path(tempfile.mkdtemp(prefix="bench_pixels_"))
    generate_corpus(out, patients=patients, seed=1)
    return sorted(out.rglob("*.dcm"))


def run(which: str, patients: int) -> dict:
    redactor = PixelRedactor(TextReader())
    scores, seconds, per_modality = [], [], defaultdict(list)
    for path in files_of(which, patients):
        started = time.perf_counter()
        ds = pydicom.dcmread(path)
        known = gather(ds)
        result, pixels = redactor.find(ds, known, sex=str(ds.get("PatientSex", "")),
                                       ages=ages_of(ds))
        redacted = fill_boxes(pixels, ds, result.phi_boxes) if result.phi_boxes else pixels
        if result.phi_boxes:
            write_pixels_back(ds, redacted, transfer_syntax_of(ds))
        ds.save_as(io.BytesIO(), enforce_file_format=True)
        seconds.append(time.perf_counter() - started)
        shape = (int(ds.Rows), int(ds.Columns))
        changed = np.asarray(pixels != redacted)
        if samples_per_pixel(ds) > 1:
            changed = changed.any(axis=-1)
        if frame_count(pixels, ds) > 1:
            changed = changed.any(axis=0)
        rows, columns = shape
        boxes = [padded(b, rows, columns) for b in result.phi_boxes]
        score = score_image(load_truth(path.with_suffix(".json")), boxes, shape, changed)
        scores.append(score)
        per_modality[str(ds.get("Modality", "?"))].append(score)
    summary = summarise(scores)
    summary.update(
        seconds_median=round(statistics.median(seconds), 3),
        seconds_p90=round(sorted(seconds)[int(0.9 * (len(seconds) - 1))], 3),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    return {"set": which, "summary": summary,
            "by_modality": {m: summarise(s) for m, s in sorted(per_modality.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["dev", "synth"], default="dev")
    parser.add_argument("--patients", type=int, default=4, help="synthetic corpus size")
    args = parser.parse_args()
    report = run(args.set, args.patients)
    s = report["summary"]
    print("| detector | precision | recall | F1 | non-PHI kept | outside unchanged | s/image (median, p90) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| deid_pipeline PP-OCRv6 + metadata ({args.set}, {s['images']} images) | "
          f"{s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['non_phi_kept']:.3f} | "
          f"{s['outside_unchanged']:.4f} | {s['seconds_median']:.2f}, {s['seconds_p90']:.2f} |")
    for modality, m in report["by_modality"].items():
        print(f"|   {modality} ({m['images']}) | {m['precision']:.3f} | {m['recall']:.3f} | "
              f"{m['f1']:.3f} | {m['non_phi_kept']:.3f} | | |")
    out = ROOT / "benchmarks" / "results" / f"bench_pixels_{args.set}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
