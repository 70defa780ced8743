"""Fuzz the reader and the tag engine for a fixed time: bytes of small valid DICOM files are
mutated (hypothesis) and handed to the per-file API, which must never let an exception out, never
hang, and never write a file that does not parse (run on demand).

    .venv/bin/python benchmarks/fuzz_reader.py [--seconds 120] [--out DIR]

Seeds: one realistic 16 x 16 CT image (about 100 elements, nested sequences, private blocks) in
explicit and implicit VR little endian, explicit big endian, deflated, with undefined-length
sequences and items, with RLE pixel data, and in ISO 2022 IR 87 (Japanese). Mutations, one to
eight per example: flip a byte, write an interesting 16- or 32-bit value (lengths, 0xFFFFFFFF,
item and delimiter tags), insert bytes or a delimiter, delete or duplicate a run, truncate.
Per example: `ingest.describe` (the manifest row) and `deid.batch.deidentify_file` (tags only,
as `--no-pixels` does) run on the file; a quarantine reason is a pass. A finding is an exception
escaping either, an example running longer than `--hang` seconds, or an output that pydicom cannot
read back. Each finding's input is saved under `--out` (synthetic data only). The process's
address space is capped (4 GiB) so that a mutated length fails to allocate rather than take the
machine. Writes `--out`/summary.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pydicom  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pydicom.uid import (  # noqa: E402
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from deid_pipeline.core.deid.batch import deidentify_file  # noqa: E402
from deid_pipeline.core.deid.engine import TagEngine  # noqa: E402
from deid_pipeline.core.discovery import FileKind, SourceFile  # noqa: E402
from deid_pipeline.core.ingest import describe  # noqa: E402
from deid_pipeline.core.policy.rules import load_policy  # noqa: E402
from deid_pipeline.core.pseudonyms import Pseudonymizer  # noqa: E402
from deid_pipeline.core.quiet import file_messages_muted  # noqa: E402
from deid_pipeline_tests.dicom_factory import realistic_image  # noqa: E402

ADDRESS_SPACE = 4 << 30
EXAMPLES_PER_ROUND = 50
INTERESTING_32 = (0, 1, 2, 7, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
                  0xFFFFFFFF, 0xE000FFFE, 0xE00DFFFE, 0xE0DDFFFE)
INTERESTING_16 = (0, 1, 3, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
MARKERS = (b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\x00\x00\x00\x00",
           b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"SQ\x00\x00\xff\xff\xff\xff", b"DICM")


def encoded(ds: pydicom.Dataset, **options) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, **options)
    return buffer.getvalue()


def seeds() -> list[bytes]:
    made = [encoded(realistic_image())]
    for syntax, options in ((ImplicitVRLittleEndian, {}), (DeflatedExplicitVRLittleEndian, {}),
                            (ExplicitVRBigEndian, {"implicit_vr": False, "little_endian": False})):
        ds = realistic_image()
        ds.file_meta.TransferSyntaxUID = syntax
        made.append(encoded(ds, **options))
    ds = realistic_image()
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
    made.append(encoded(ds))
    ds = realistic_image(pixels=(32, 32))
    ds.compress(RLELossless)
    made.append(encoded(ds))
    ds = realistic_image()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "ヤマダ^タロウ=山田^太郎=やまだ^たろう"
    made.append(encoded(ds))
    return made


def mutations() -> st.SearchStrategy:
    at = st.floats(0, 1)
    return st.lists(st.one_of(
        st.tuples(st.just("flip"), at, st.integers(1, 255)),
        st.tuples(st.just("set32"), at, st.sampled_from(INTERESTING_32)),
        st.tuples(st.just("set16"), at, st.sampled_from(INTERESTING_16)),
        st.tuples(st.just("insert"), at,
                  st.one_of(st.sampled_from(MARKERS), st.binary(min_size=1, max_size=16))),
        st.tuples(st.just("delete"), at, st.integers(1, 64)),
        st.tuples(st.just("duplicate"), at, st.integers(1, 64)),
        st.tuples(st.just("truncate"), at, st.just(0)),
    ), min_size=1, max_size=8)


def mutate(data: bytes, operations: list[tuple]) -> bytes:
    out = bytearray(data)
    for name, where, argument in operations:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if name == "flip" and out:
            out[at] ^= argument
        elif name == "set32":
            out[at:at + 4] = argument.to_bytes(4, "little")
        elif name == "set16":
            out[at:at + 2] = argument.to_bytes(2, "little")
        elif name == "insert":
            out[at:at] = argument
        elif name == "delete":
            del out[at:at + argument]
        elif name == "duplicate":
            out[at:at] = out[at:at + argument]
        elif name == "truncate":
            del out[at:]
    return bytes(out)


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so that no `except Exception` takes it for a
    quarantine reason."""


def on_alarm(signum: int, frame: object) -> None:
    raise Hang


class Finding(Exception):
    """What the fuzzer reports: its message says what went wrong."""


class Fuzzer:
    def __init__(self, scratch: Path, hang_seconds: int) -> None:
        self.seeds = seeds()
        self.engine = TagEngine(load_policy(), Pseudonymizer(b"fuzz secret, not for production"))
        self.input = scratch / "input.dcm"
        self.dst = scratch / "out"
        self.hang_seconds = hang_seconds
        self.examples = 0
        self.outcomes: Counter[str] = Counter()
        self.slowest = 0.0
        self.last_input = b""

    def check(self, data: bytes) -> None:
        self.last_input = data
        self.examples += 1
        self.input.write_bytes(data)
        source = SourceFile(self.input, "input.dcm", FileKind.DICOM if data[128:132] == b"DICM"
                            else FileKind.UNKNOWN, len(data))
        started = time.perf_counter()
        signal.alarm(self.hang_seconds)
        try:
            with file_messages_muted():  # as build_manifest and the batch run them
                row = describe(source)
                outcome = deidentify_file(source, self.engine, self.dst)
        except Hang:
            raise Finding(f"hang: over {self.hang_seconds} s") from None
        except Exception as exc:
            raise Finding(f"{type(exc).__name__} escaped: "
                          f"{traceback.format_exc(limit=-3)}") from exc
        finally:
            signal.alarm(0)
        self.slowest = max(self.slowest, time.perf_counter() - started)
        self.outcomes[f"manifest {'readable' if row['readable'] else 'unreadable'}"] += 1
        self.outcomes[outcome.reason or "de-identified"] += 1
        try:
            for written in [p for p in self.dst.rglob("*") if p.is_file()]:
                try:
                    with file_messages_muted():
                        list(pydicom.dcmread(written, force=False).iterall())
                except Exception as exc:  # noqa: BLE001 - any failure to read back is the finding
                    raise Finding(f"output does not read back ({type(exc).__name__})") from exc
        finally:
            shutil.rmtree(self.dst, ignore_errors=True)


def run(seconds: float, out: Path, hang_seconds: int) -> dict:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    signal.signal(signal.SIGALRM, on_alarm)
    out.mkdir(parents=True, exist_ok=True)
    findings: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        fuzzer = Fuzzer(Path(scratch), hang_seconds)

        @settings(max_examples=EXAMPLES_PER_ROUND, deadline=None, database=None,
                  phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
        @given(seed=st.integers(0, len(fuzzer.seeds) - 1), operations=mutations())
        def example(seed: int, operations: list[tuple]) -> None:
            fuzzer.check(mutate(fuzzer.seeds[seed], operations))

        started = time.monotonic()
        while time.monotonic() - started < seconds:
            try:
                example()
            # A Finding, or hypothesis' group of several (or of one that did not repeat).
            except Exception as failure:  # noqa: BLE001
                name = hashlib.sha256(fuzzer.last_input).hexdigest()[:16] + ".dcm"
                (out / name).write_bytes(fuzzer.last_input)
                text = "; ".join(str(e) for e in getattr(failure, "exceptions", [failure]))
                findings.append({"input": name, "finding": text})
                print(f"FINDING {name}: {text}", flush=True)
        summary = {"seconds": round(time.monotonic() - started, 1), "examples": fuzzer.examples,
                   "findings": findings, "slowest_example_s": round(fuzzer.slowest, 3),
                   "outcomes": dict(fuzzer.outcomes.most_common())}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--hang", type=int, default=30, help="seconds one example may take")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "fuzz_reader")
    args = parser.parse_args()
    summary = run(args.seconds, args.out, args.hang)
    print(f"{summary['examples']} examples in {summary['seconds']} s, "
          f"{len(summary['findings'])} finding(s), slowest example "
          f"{summary['slowest_example_s']} s")
    for outcome, count in list(summary["outcomes"].items())[:12]:
        print(f"{count:>7}  {outcome}")
    sys.exit(1 if summary["findings"] else 0)


if __name__ == "__main__":
    main()
