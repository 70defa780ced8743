"""Encode and decode throughput of every writable transfer syntax (run on demand).

    .venv/bin/python benchmarks/bench_codecs.py [--seconds 0.5] [--out FILE]

Two frames, as the pipeline meets them: a 512 x 512 MONOCHROME2 frame of 16 bits (a CT-like
phantom: smooth anatomy, 12 bits of range used, one-step noise) and a 512 x 512 RGB frame of
8 bits (smooth colour gradients with noise). Each is encoded with `codecs.encode_pixels` and
decoded with `transcode.decode_pixels` (pydicom's backends), in memory, no file I/O. MB/s counts
native bytes (10**6 bytes per MB) over the median time of as many runs as fit in `--seconds`
(at least 3) after one warm-up. Lossless syntaxes are checked bit-exact; lossy ones report PSNR
against the span of the frame's values. Syntaxes that cannot hold a frame (JPEG Baseline with
16 bits) are listed as n/a. Deflated is left out: it compresses the whole data set when the file
is written, not in the pixel codecs. Synthetic frames compress better than clinical ones, so
the ratios are no guide to storage. Prints a table and writes
benchmarks/results/bench_codecs.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deid_pipeline.core.codecs import encodable, encode_pixels  # noqa: E402
from deid_pipeline.core.transcode import LOSSY_SYNTAXES, SYNTAX_NAMES, decode_pixels  # noqa: E402

SIZE = 512
MB = 1e6


def frame_dataset(photometric: str, bits_allocated: int, bits_stored: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = uid.SecondaryCaptureImageStorage
    ds.SOPInstanceUID = uid.generate_uid(entropy_srcs=[photometric])
    ds.Rows = ds.Columns = SIZE
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 0
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    return ds


def ct_like_frame(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[-1:1:SIZE * 1j, -1:1:SIZE * 1j]
    body = (x**2 / 0.8 + y**2 / 0.6) < 1
    organs = 300 * np.sin(6 * x) * np.cos(4 * y) + 200 * ((x - 0.2) ** 2 + y**2 < 0.05)
    values = np.where(body, 1024 + organs, 0) + rng.normal(0, 1, body.shape)
    return np.clip(np.round(values), 0, 2**16 - 1).astype("<u2")


def rgb_frame(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    planes = [(np.sin(x / (20 + 7 * c)) + np.cos(y / (15 + 5 * c)) + 2) / 4 for c in range(3)]
    values = np.stack(planes, axis=-1) * 255 + rng.normal(0, 1, (SIZE, SIZE, 3))
    return np.clip(np.round(values), 0, 255).astype("u1")


def median_seconds(run: Callable[[], object], budget: float) -> float:
    run()  # warm-up: plugin imports, first-call allocations
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < budget:
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def psnr_db(original: np.ndarray, decoded: np.ndarray) -> float:
    error = np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(float(np.ptp(original)) ** 2 / error)


def measure(template: Dataset, pixels: np.ndarray, syntax: str, budget: float) -> dict:
    reason = encodable(template, syntax)
    if reason is not None:
        return {"skipped": reason}

    def encode() -> Dataset:
        ds = copy.deepcopy(template)  # encode_pixels rewrites the pixel description
        encode_pixels(ds, pixels, syntax)
        return ds

    encoded = encode()
    encode_s = median_seconds(encode, budget)
    decode_s = median_seconds(lambda: decode_pixels(encoded), budget)
    decoded = decode_pixels(encoded)
    if syntax not in LOSSY_SYNTAXES and not np.array_equal(decoded, pixels):
        raise AssertionError(f"{uid.UID(syntax).name} did not round-trip bit-exact")
    return {
        "encode_mb_s": pixels.nbytes / MB / encode_s,
        "decode_mb_s": pixels.nbytes / MB / decode_s,
        "ratio": pixels.nbytes / len(encoded.PixelData),
        "psnr_db": psnr_db(pixels, decoded),
    }


def table(results: dict) -> str:
    lines = ["| syntax | frame | encode MB/s | decode MB/s | ratio | PSNR dB |",
             "|---|---|---:|---:|---:|---:|"]
    for name, frames in results.items():
        for frame, row in frames.items():
            if "skipped" in row:
                lines.append(f"| {name} | {frame} | n/a | n/a | | {row['skipped']} |")
                continue
            psnr = "lossless" if row["psnr_db"] == float("inf") else f"{row['psnr_db']:.1f}"
            lines.append(f"| {name} | {frame} | {row['encode_mb_s']:.1f} | "
                         f"{row['decode_mb_s']:.1f} | {row['ratio']:.2f} | {psnr} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="time budget per measurement (default 0.5)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bench_codecs.json")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    frames = {
        "512x512 MONOCHROME2 16-bit": (frame_dataset("MONOCHROME2", 16, 16), ct_like_frame(rng)),
        "512x512 RGB 8-bit": (frame_dataset("RGB", 8, 8), rgb_frame(rng)),
    }
    results = {
        name: {label: measure(ds, pixels, syntax, args.seconds)
               for label, (ds, pixels) in frames.items()}
        for name, syntax in SYNTAX_NAMES.items()
        if syntax != uid.DeflatedExplicitVRLittleEndian
    }
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "seconds_per_measurement": args.seconds,
        "results": results,
    }, indent=1))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
