"""Detection recall of burned-in PHI on the development set, and time per image (run on demand).

    .venv/bin/python benchmarks/bench_ocr_detection.py [--repeat 3] [--views full,window,...]
        [--min-side 512] [--max-side 1600] [--unclip 1.6] [--box-thresh 0.5] [--det-thresh 0.3]
        [--threads 0] [--data DIR] [--out FILE]

For every `X.dcm` of the set (default /work/shared/data/burned_in_dev, or $DEID_BURNED_IN_DEV)
and every annotated value box of its `X.json` (non-empty text), the frame is read the way the
pipeline reads it (`reading_views` then `TextReader.read`), and:

* a value box is **detected** when the union of the detected line boxes covers at least 70 % of
  its area (COVERAGE_RULE; boxes are first clipped to the frame, where text runs off its edge);
  `word_recall` applies the same rule to the union of word boxes; `ink_recall` asks instead that
  70 % of the box's ink be covered (ink: pixels a quarter of the range away from the box's median
  in the full-range view) — fairer to the boxes drawn around a value wrapped onto two lines,
  which span the first line's width on the second;
* a value is **read** when its text (upper case, spaces dropped) is found, within an edit
  distance of 20 % of its length, in the text of the lines whose boxes overlap it;
* a **stray** box is a detected line that overlaps no annotated box, key or value (not
  necessarily an error: images carry non-PHI text such as orientation markers).

Seconds per image cover views and OCR (not file decoding), the median of `--repeat` runs, after
one warm-up read; the table gives the median and 90th percentile over images, and the median
seconds of detection (all the views searched) and of recognition; `det_passes`
counts the views searched (the `full` view is only read). Writes
benchmarks/results/bench_ocr_detection.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deid_pipeline.core.pixels.ocr import TextReader  # noqa: E402
from deid_pipeline.core.pixels.views import frames_to_read, reading_views  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("DEID_BURNED_IN_DEV", "/work/shared/data/burned_in_dev"))
COVERAGE_RULE = 0.7
TEXT_SLACK = 0.2


def fuzzy_find(needle: str, haystack: str) -> int:
    """Smallest edit distance between `needle` and any substring of `haystack`."""
    if not needle:
        return 0
    previous = [0] * (len(haystack) + 1)
    for i, a in enumerate(needle, 1):
        current = [i] + [0] * len(haystack)
        for j, b in enumerate(haystack, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b))
        previous = current
    return min(previous)


def coverage(box: list[int], boxes: list[tuple[int, int, int, int]],
             shape: tuple[int, int]) -> float:
    x1, y1, x2, y2 = box
    mask = np.zeros(shape, bool)
    for bx1, by1, bx2, by2 in boxes:
        mask[by1:by2 + 1, bx1:bx2 + 1] = True
    region = mask[y1:y2 + 1, x1:x2 + 1]
    return float(region.mean()) if region.size else 0.0


def ink_coverage(box: list[int], boxes: list[tuple[int, int, int, int]],
                 full: np.ndarray) -> float | None:
    """Share of the box's ink covered: ink is what differs from the box's median grey by a
    quarter of the range in the full-range view (None when the box holds none)."""
    x1, y1, x2, y2 = box
    region = full[y1:y2 + 1, x1:x2 + 1].astype(np.int16)
    ink = np.abs(region - np.median(region)) >= 64
    if not ink.any():
        return None
    mask = np.zeros(full.shape, bool)
    for bx1, by1, bx2, by2 in boxes:
        mask[by1:by2 + 1, bx1:bx2 + 1] = True
    return float(mask[y1:y2 + 1, x1:x2 + 1][ink].mean())


def overlaps(a, b) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def normalise(text: str) -> str:
    return "".join(text.upper().split())


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--views", default="", help="comma-separated view names to keep")
    parser.add_argument("--min-side", type=int, default=None)
    parser.add_argument("--max-side", type=int, default=None)
    parser.add_argument("--max-upscale", type=float, default=None)
    parser.add_argument("--unclip", type=float, default=None)
    parser.add_argument("--box-thresh", type=float, default=None)
    parser.add_argument("--det-thresh", type=float, default=None)
    parser.add_argument("--rec-batch", type=int, default=None)
    parser.add_argument("--rec-squeeze", type=float, default=None)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/bench_ocr_detection.json")
    parser.add_argument("--quiet", action="store_true", help="summary only")
    parser.add_argument("--rapidocr-baseline", action="store_true",
                        help="also time rapidocr's own pipeline (default settings, no angle "
                             "classifier) on the full-range view, for a load-independent ratio")
    args = parser.parse_args(argv)

    settings = {key: value for key, value in {
        "min_side": args.min_side, "max_side": args.max_side, "max_upscale": args.max_upscale,
        "unclip_ratio": args.unclip, "box_thresh": args.box_thresh, "det_thresh": args.det_thresh,
        "rec_batch": args.rec_batch, "rec_squeeze": args.rec_squeeze}.items() if value is not None}
    reader = TextReader(device="cpu", threads=args.threads, **settings)
    names = tuple(args.views.split(",")) if args.views else None

    baseline, baseline_seconds = None, []
    if args.rapidocr_baseline:
        from rapidocr import RapidOCR

        baseline = RapidOCR(params={"Global.log_level": "warning", "Global.use_cls": False})
    files = sorted(args.data.glob("*.dcm"))
    if not files:
        print(f"no .dcm files in {args.data}", file=sys.stderr)
        return 2
    images, misses = [], []
    detect_times: list[float] = []
    rec_times: list[float] = []
    for path in files:
        ds = pydicom.dcmread(path)
        annotation = json.loads(path.with_suffix(".json").read_text())["annotation"]
        frame = next(frames_to_read(ds.pixel_array, ds)).pixels
        reader.read(reading_views(frame, ds, names=names))  # warm-up
        seconds, timings = [], {}
        for _ in range(max(1, args.repeat)):
            timings = {}
            reader.clear_cache()  # cold reads: no line recognised before
            start = time.perf_counter()
            views = reading_views(frame, ds, names=names)
            lines = reader.read(views, timings=timings)
            seconds.append(time.perf_counter() - start)
        if baseline is not None:
            image = views[0].image
            baseline(image)
            runs = []
            for _ in range(max(1, args.repeat)):
                start = time.perf_counter()
                baseline(image)
                runs.append(time.perf_counter() - start)
            baseline_seconds.append(statistics.median(runs))
        detect_times.append(timings.get("detect", 0.0))
        rec_times.append(timings.get("recognize", 0.0))
        shape = frame.shape[:2]
        full = next(v.image for v in reading_views(frame, ds, names=("full", "color")))
        full = full if full.ndim == 2 else full.max(axis=-1)
        scale = reader.scale_for(*shape)
        searched = [v.name for v in views if v.detect]
        det_pixels = len(searched) * round(shape[0] * scale) * round(shape[1] * scale)
        line_boxes = [line.box for line in lines]
        word_boxes = [word.box for line in lines for word in line.words]
        annotated = [item["value"]["bbox"] for item in annotation]
        annotated += [item["key"]["bbox"] for item in annotation if item.get("key", {}).get("bbox")]
        values = []
        for item in annotation:
            value = item["value"]
            text, box = value["text"], value["bbox"]
            if not text.strip() or box[2] <= box[0]:
                continue
            # Boxes may run past the frame's edge (text cut off there): keep the visible part.
            box = [max(box[0], 0), max(box[1], 0), min(box[2], shape[1] - 1),
                   min(box[3], shape[0] - 1)]
            cov = coverage(box, line_boxes, shape)
            ink = ink_coverage(box, line_boxes, full)
            ink_hit = (ink if ink is not None else cov) >= COVERAGE_RULE
            word_cov = coverage(box, word_boxes, shape)
            near = " ".join(line.text for line in lines if overlaps(line.box, box))
            read = fuzzy_find(normalise(text), normalise(near)) <= TEXT_SLACK * len(normalise(text))
            values.append({"key": item.get("key", {}).get("text", ""), "text": text, "bbox": box,
                           "coverage": round(cov, 3), "detected": cov >= COVERAGE_RULE,
                           "ink_coverage": None if ink is None else round(ink, 3),
                           "ink_detected": ink_hit,
                           "word_coverage": round(word_cov, 3),
                           "word_detected": word_cov >= COVERAGE_RULE,
                           "read": read, "ocr_text": near})
            if cov < COVERAGE_RULE or not read:
                misses.append({"file": path.name, **values[-1]})
        stray = [line for line in lines
                 if not any(overlaps(line.box, box) for box in annotated if box[2] > box[0])]
        images.append({
            "file": path.name, "modality": str(ds.get("Modality", "")), "shape": list(shape),
            "views": [v.name for v in views], "searched": searched,
            "seconds": round(statistics.median(seconds), 4),
            "seconds_min": round(min(seconds), 4),
            "timings": {k: round(v, 4) for k, v in timings.items()},
            "lines": len(lines), "stray": len(stray), "det_pixels": det_pixels,
            "rec_columns": int(timings.get("rec_columns", 0)),
            "stray_text": [line.text for line in stray],
            "values": values,
        })

    all_values = [v for image in images for v in image["values"]]
    seconds = [image["seconds"] for image in images]
    best = [image["seconds_min"] for image in images]
    per_512 = [image["seconds"] * 512 * 512 / (image["shape"][0] * image["shape"][1])
               for image in images]
    summary = {
        "images": len(images), "value_boxes": len(all_values),
        "recall": round(sum(v["detected"] for v in all_values) / len(all_values), 4),
        "ink_recall": round(sum(v["ink_detected"] for v in all_values) / len(all_values), 4),
        "word_recall": round(sum(v["word_detected"] for v in all_values) / len(all_values), 4),
        "read_recall": round(sum(v["read"] for v in all_values) / len(all_values), 4),
        "stray_boxes": sum(image["stray"] for image in images),
        "det_passes": sum(len(image["searched"]) for image in images),
        "det_megapixels": round(sum(image["det_pixels"] for image in images) / 1e6, 2),
        "rec_columns": sum(image["rec_columns"] for image in images),
        "lines": sum(image["lines"] for image in images),
        "seconds_median": round(statistics.median(seconds), 4),
        "seconds_min_median": round(statistics.median(best), 4),
        "seconds_p90": round(percentile(seconds, 90), 4),
        "seconds_per_512x512_median": round(statistics.median(per_512), 4),
        "seconds_detect_median": round(statistics.median(detect_times), 4),
        "views_searched": {name: sum(name in image["searched"] for image in images)
                           for name in sorted({n for image in images for n in image["searched"]})},
        "seconds_recognize_median": round(statistics.median(rec_times), 4),
        "rapidocr_default_seconds_median": (round(statistics.median(baseline_seconds), 4)
                                            if baseline_seconds else None),
        "coverage_rule": f"value box area covered by detected line boxes >= {COVERAGE_RULE}",
        "ink_rule": f"value box ink pixels covered by detected line boxes >= {COVERAGE_RULE}",
    }
    result = {"settings": {**settings, "views": args.views or "default", "threads": args.threads,
                           "repeat": args.repeat, "device": reader.device},
              "summary": summary, "misses": misses, "images": images}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))

    if not args.quiet:
        print(f"{'file':<44} {'shape':>9} {'views':<22} {'det':>7} {'read':>7} {'stray':>5} "
              f"{'s':>6}")
        for image in images:
            det = sum(v["detected"] for v in image["values"])
            read = sum(v["read"] for v in image["values"])
            n = len(image["values"])
            print(f"{image['file'][:44]:<44} {'x'.join(map(str, image['shape'])):>9} "
                  f"{','.join(image['views']):<22} {det:>3}/{n:<3} {read:>3}/{n:<3} "
                  f"{image['stray']:>5} {image['seconds']:>6.3f}")
        for miss in misses:
            print(f"  miss: {miss['file'][:30]} {miss['key']!r} {miss['text']!r} box {miss['bbox']}"
                  f" coverage {miss['coverage']} read {miss['read']} ocr {miss['ocr_text']!r}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
