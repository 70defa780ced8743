"""The `deid-pipeline` command.

Exit codes users script against: 0 all went well, 1 the run failed, 2 usage error (bad arguments,
missing or unwritable folders), 3 some input went to quarantine. Errors are one line on stderr,
never a traceback: a traceback can quote values from the files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from deid_pipeline.core.workers import available_cpus

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_QUARANTINE = 3
DEBUG_ENV = "DEID_DEBUG"


class UsageError(Exception):
    """Bad arguments or paths: reported in one line, exit 2."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print the whole usage block
        raise UsageError(message)


def writable_folder(value: str, role: str = "output") -> Path:
    folder = Path(value)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {role} folder {folder}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{role} folder is not writable: {folder}")
    return folder


def existing_folder(value: str) -> Path:
    folder = Path(value)
    if not folder.is_dir():
        raise UsageError(f"input folder not found: {folder}")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UsageError(f"input folder cannot be read (permission denied): {folder}")
    return folder


def disjoint_folders(**folders: Path) -> None:
    """No named folder may be, or lie inside, another: a tree that is read must not receive
    what is written."""
    resolved = {name: folder.resolve() for name, folder in folders.items()}
    for (a, pa), (b, pb) in [(x, y) for x in resolved.items() for y in resolved.items()]:
        if a != b and (pa == pb or pa in pb.parents):
            raise UsageError(f"the {b} folder must not be inside the {a} folder")


def partition_day(value: str) -> str:
    """A day that has a partition (checked before anything is written for it)."""
    from deid_pipeline.partitions import ingest_days

    try:
        day = dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"not a day (YYYY-MM-DD): {value}") from None
    keys = ingest_days.get_partition_keys()
    if day not in keys:
        raise UsageError(f"no partition for {day} (the days are {keys[0]} to {keys[-1]})")
    return day


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"not a positive whole number: {value}")
    return int(value)


def seed(value: str) -> int:
    if not value.isdigit():
        raise UsageError(f"not a seed (a whole number from 0): {value}")
    return int(value)


def cmd_synth(args: argparse.Namespace) -> int:
    from deid_pipeline.core.synth import generate_corpus

    out = writable_folder(args.out)
    summary = generate_corpus(out, patients=args.patients, seed=args.seed)
    print(f"synth: {summary.files} DICOM files and {summary.slides} slides, "
          f"{summary.patients} patients, "
          f"{summary.studies} studies, {summary.series} series in {out}; "
          f"answer key {summary.answer_key}")
    return EXIT_OK


def cmd_deid(args: argparse.Namespace) -> int:
    src = existing_folder(args.src)
    # Outputs, inputs and the work folder (mappings re-identify) must not nest.
    disjoint_folders(input=src, output=Path(args.dst), work=Path(args.work))
    if args.jobs > 1:
        from deid_pipeline.core.workers import worker_context

        # The worker server imports the stage modules while this process does the same and
        # loads the policy (~1 s each), not after: 300 files on 2 processes, 2.6 -> 2.1 s.
        worker_context()
    from deid_pipeline.core.deid.batch import deidentify_tree
    from deid_pipeline.core.deid.engine import TagEngine
    from deid_pipeline.core.pixels.stage import PixelRedactor
    from deid_pipeline.core.policy.rules import PolicyError, load_policy
    from deid_pipeline.core.pseudonyms import MissingSecretError, Pseudonymizer

    try:
        policy = load_policy(args.policy)
        pseudonymizer = Pseudonymizer.from_environment(min_shift_days=policy.shift_min_days,
                                                       max_shift_days=policy.shift_max_days)
    except (PolicyError, MissingSecretError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    dst, work = writable_folder(args.dst), writable_folder(args.work, role="work")
    redactor = None if args.no_pixels else PixelRedactor(zones=policy.pixels.zones)
    report = deidentify_tree(src, dst, work, TagEngine(policy, pseudonymizer), jobs=args.jobs,
                             redactor=redactor)
    print(f"deid: {report.summary()}; mappings, audit and quarantine in {work}")
    return EXIT_QUARANTINE if report.quarantined else EXIT_OK


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"file not found: {path}")
    return path


def cmd_validate(args: argparse.Namespace) -> int:
    from deid_pipeline.core.validate.excel import write_workbook
    from deid_pipeline.core.validate.midib import (AnswerKeyError, MidibValidator, scoring,
                                                   worst_per_series)

    answers, mappings = existing_file(args.answers), existing_folder(args.mappings)
    output = existing_folder(args.output)
    for written in filter(None, (args.report, args.results)):
        if Path(written).is_dir():
            raise UsageError(f"a folder where a file is to be written: {written}")
        writable_folder(str(Path(written).parent), role="report")
    read_box = None
    if not args.no_pixels:
        from deid_pipeline.core.validate.box_reader import OcrBoxReader

        read_box = OcrBoxReader()
    try:
        validator = MidibValidator.from_files(answers, mappings, read_box)
    except AnswerKeyError as exc:
        raise UsageError(str(exc)) from None
    results = validator.results(output)
    write_workbook(results, Path(args.report))
    if args.results:
        results.to_parquet(args.results, index=False)
    table = scoring(results).set_index("Category")
    by_series = scoring(worst_per_series(results)).set_index("Category").loc["All"]
    for category, row in [*table.iterrows(), ("All, by series", by_series)]:
        print(f"{category:<20} {int(row.Pass):>8} / {int(row.Total):<8} {row.Score:.4%}")
    print(f"validate: report {args.report}")
    return EXIT_OK if table.loc["All", "Fail"] == 0 else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from deid_pipeline.core.pseudonyms import MissingSecretError
    from deid_pipeline.resources import default_data_root

    data_root = writable_folder(args.data_root or default_data_root())
    try:
        # In production even loading the definitions asks for the key.
        from deid_pipeline.demo import run_demo

        report = run_demo(data_root=data_root, partition=args.partition,
                          patients=args.patients, seed=args.seed)
    except MissingSecretError as exc:
        raise UsageError(str(exc)) from None
    print(report)
    return EXIT_OK if report.succeeded else EXIT_FAILED


def cmd_transcode(args: argparse.Namespace) -> int:
    from deid_pipeline.core.transcode import resolve_syntax, transcode_tree

    try:
        syntax = resolve_syntax(args.syntax)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    src, dst = existing_folder(args.src), Path(args.dst)
    quarantine = Path(args.quarantine or f"{dst}-quarantine")
    disjoint_folders(input=src, output=dst, quarantine=quarantine)
    dst, quarantine = writable_folder(args.dst), writable_folder(str(quarantine))
    report = transcode_tree(src, dst, syntax, quarantine)
    print(f"transcode: {report.summary()}; quarantine in {quarantine}")
    for note, files in sorted(report.notes.items()):
        print(f"transcode: note: {files}× {note}")
    return EXIT_QUARANTINE if report.quarantined else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="deid-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    synth = commands.add_parser("synth", help="generate a synthetic MIDI-B-style DICOM corpus")
    synth.add_argument("out", help="folder to write the corpus into")
    synth.add_argument("--patients", type=positive_int, default=12)
    synth.add_argument("--seed", type=seed, default=0)
    synth.set_defaults(run=cmd_synth)

    deid = commands.add_parser("deid", help="de-identify every DICOM file under SRC into DST")
    deid.add_argument("src", help="input folder (read only)")
    deid.add_argument("dst", help="output folder for de-identified files")
    deid.add_argument("--work", required=True,
                      help="folder for mapping files, audit and quarantine (outside DST)")
    deid.add_argument("--policy", type=Path, action="append", default=[],
                      help="policy YAML layered over the default (repeatable)")
    deid.add_argument("--no-pixels", action="store_true",
                      help="de-identify tags only: no OCR of burned-in text")
    deid.add_argument("--jobs", type=positive_int, default=available_cpus(),
                      help="worker processes (default: the CPUs this process may use)")
    deid.set_defaults(run=cmd_deid)

    validate = commands.add_parser(
        "validate", help="run the MIDI-B checks of an answer key over a de-identified tree")
    validate.add_argument("output", help="the de-identified tree")
    validate.add_argument("--answers", required=True, help="answer key (SQLite, MIDI-B format)")
    validate.add_argument("--mappings", required=True,
                          help="folder with uid_mapping.csv and patid_mapping.csv")
    validate.add_argument("--report", required=True, help="Excel workbook to write")
    validate.add_argument("--results", help="also write every check's result as Parquet")
    validate.add_argument("--no-pixels", action="store_true",
                          help="skip pixels_hidden (it runs OCR on every box)")
    validate.set_defaults(run=cmd_validate)

    demo = commands.add_parser(
        "demo", help="generate a corpus into today's drop folder and materialize the graph for it")
    demo.add_argument("--data-root", default=None,
                      help="data root (default: $DEID_DATA_ROOT or ./data)")
    demo.add_argument("--partition", type=partition_day, default=dt.date.today().isoformat())
    demo.add_argument("--patients", type=positive_int, default=4,
                      help="synthetic patients (4 give about 75 files; OCR costs ~1 s a file)")
    demo.add_argument("--seed", type=seed, default=0)
    demo.set_defaults(run=cmd_demo)

    transcode = commands.add_parser(
        "transcode", help="convert every DICOM file under SRC into DST in one transfer syntax")
    transcode.add_argument("src", help="input folder (read only)")
    transcode.add_argument("dst", help="output folder, same relative paths as SRC")
    transcode.add_argument("--syntax", required=True,
                           help="target transfer syntax: a UID or a name such as j2k-lossless, "
                                "jpeg-baseline, rle, htj2k-lossless, explicit-le")
    transcode.add_argument("--quarantine", default=None,
                           help="folder for inputs that cannot be converted, with their reasons "
                                "(default: DST-quarantine beside DST)")
    transcode.set_defaults(run=cmd_transcode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as exc:
        print(f"deid-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("deid-pipeline: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"deid-pipeline: error: {type(exc).__name__} (set {DEBUG_ENV}=1 for details)",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
