"""The pixel stage over a partition: the same results on worker processes as in one, and a file
a step cannot process (or whose worker process dies on it) quarantined, never delivered."""

import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from deid_pipeline.core.deid.batch import FINDING_COLUMNS, WorkPaths, deidentify_tree
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.discovery import FileKind
from deid_pipeline.core.pixels.batch import (
    encode_tree,
    find_phi,
    quarantined_files,
    redact_tree,
)
from deid_pipeline.core.pixels.stage import PixelRedactor, PixelResult
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer

SECRET = b"pixel batch test secret, not for production"


@dataclass(frozen=True)
class Partition:
    incoming: Path
    deidentified: Path
    files: pd.DataFrame


def small_images(corpus_root: Path) -> list[Path]:
    """A few small single-frame images of the corpus (OCR time): two with burned-in PHI, in
    different transfer syntaxes, and one without text."""
    with_phi, syntaxes, without_text = [], set(), []
    for path in sorted(corpus_root.rglob("*.dcm")):
        truth = json.loads(path.with_suffix(".json").read_text())
        if truth["frames"] != 1 or truth["rows"] * truth["columns"] > 256 * 256:
            continue
        syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        if any(w["is_phi"] for w in truth["words"]) and syntax not in syntaxes:
            with_phi.append(path)
            syntaxes.add(syntax)
        elif not truth["words"]:
            without_text.append(path)
    assert len(with_phi) >= 2 and without_text
    return with_phi[:2] + without_text[:1]


@pytest.fixture(scope="module")
def partition(small_corpus, tmp_path_factory) -> Partition:
    root = tmp_path_factory.mktemp("pixel_batch")
    for path in small_images(small_corpus.root):
        target = root / "in" / path.relative_to(small_corpus.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    deidentify_tree(root / "in", root / "out", root / "work",
                    TagEngine(load_policy(), Pseudonymizer(SECRET)),
                    kinds={FileKind.DICOM, FileKind.UNKNOWN})
    return Partition(root / "in", root / "out", pd.read_parquet(WorkPaths(root / "work").files))


@pytest.fixture(scope="module")
def found(partition, tmp_path_factory):
    """The findings in one process, and on two workers."""
    runs = {}
    for workers in (1, 2):
        runs[workers] = find_phi(partition.files, partition.incoming, partition.deidentified,
                                 PixelRedactor(device="cpu"),
                                 tmp_path_factory.mktemp("quarantine"), workers=workers)
    return runs


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_findings_on_workers_are_those_of_one_process_in_the_same_order(found):
    (one, one_report), (two, two_report) = found[1], found[2]
    assert two_report.workers == 2 and one_report.workers == 1
    assert not one.empty and one["is_phi"].any()
    pd.testing.assert_frame_equal(two, one)
    assert (two_report.files, two_report.changed_files, two_report.failed) == (
        one_report.files, one_report.changed_files, one_report.failed)
    assert one_report.files == 3 and one_report.changed >= 1  # how many: the OCR's tests


def test_redacting_and_encoding_on_workers_write_the_same_bytes(partition, found, tmp_path):
    findings, found_report = found[1]
    trees = {}
    for workers in (1, 2):
        redacted, encoded = tmp_path / f"redacted{workers}", tmp_path / f"encoded{workers}"
        redact_report = redact_tree(findings, partition.deidentified, redacted,
                                    tmp_path / "quarantine", workers=workers)
        encode_report = encode_tree(partition.files, redacted, encoded, tmp_path / "quarantine",
                                    workers=workers)
        assert redact_report.changed_files == found_report.changed_files
        assert redact_report.files == 3 and not redact_report.failed
        assert encode_report.files == 3 and not encode_report.failed
        trees[workers] = tree_bytes(redacted), tree_bytes(encoded)
    assert trees[2] == trees[1]
    syntax_of = dict(zip(partition.files["output"], partition.files["transfer_syntax"],
                         strict=True))
    for relpath in trees[1][1]:
        written = pydicom.dcmread(tmp_path / "encoded1" / relpath, stop_before_pixels=True)
        assert written.file_meta.TransferSyntaxUID == syntax_of[relpath]


def test_a_file_that_cannot_be_read_is_quarantined_and_goes_no_further(partition, tmp_path):
    deidentified = tmp_path / "deidentified"
    shutil.copytree(partition.deidentified, deidentified)
    broken = partition.files["output"].iloc[0]
    ds = pydicom.dcmread(deidentified / broken)
    ds.PixelData = ds.PixelData[:16]  # cut short: no frame can be decoded
    ds.save_as(deidentified / broken)
    quarantine = tmp_path / "quarantine"

    findings, report = find_phi(partition.files[partition.files["output"] == broken],
                                partition.incoming, deidentified, PixelRedactor(device="cpu"),
                                quarantine / "find")
    assert findings.empty and report.files == 1 and list(report.failed) == [broken]
    assert report.reasons == {report.failed[broken]: 1}
    assert report.failed[broken].startswith("text could not be read")
    assert quarantined_files(quarantine / "find") == {broken}
    assert (quarantine / "find" / broken).read_bytes() == (deidentified / broken).read_bytes()

    report = redact_tree(pd.DataFrame(columns=FINDING_COLUMNS), deidentified,
                         tmp_path / "redacted", quarantine / "redact",
                         held=quarantined_files(quarantine / "find"))
    assert report.files == 2 and not (tmp_path / "redacted" / broken).exists()


def test_a_file_whose_boxes_cannot_be_filled_is_quarantined(partition, tmp_path):
    deidentified = tmp_path / "deidentified"
    shutil.copytree(partition.deidentified, deidentified)
    broken = partition.files["output"].iloc[0]
    ds = pydicom.dcmread(deidentified / broken)
    ds.PixelData = ds.PixelData[:16]
    ds.save_as(deidentified / broken)
    findings = pd.DataFrame([{"file": broken, "frames": "0", "x1": 1, "y1": 1, "x2": 5, "y2": 5,
                              "is_phi": True, "reason": "pattern:date", "text_score": 1.0}],
                            columns=FINDING_COLUMNS)

    report = redact_tree(findings, deidentified, tmp_path / "redacted", tmp_path / "quarantine")
    assert list(report.failed) == [broken] and report.changed == 0
    assert report.failed[broken].startswith("boxes could not be filled")
    assert not (tmp_path / "redacted" / broken).exists()
    assert quarantined_files(tmp_path / "quarantine") == {broken}


class FatalFinder:
    """Stands in for a reader whose native code crashes on one image: it kills its process
    there and finds no text elsewhere."""

    def __init__(self, fatal_uid: str) -> None:
        self.fatal_uid = fatal_uid
        self.threads = 0

    def find(self, ds, known, sex="", ages=()):
        if ds.SOPInstanceUID == self.fatal_uid:
            os.kill(os.getpid(), signal.SIGKILL)
        return PixelResult(), None


def test_a_file_whose_worker_dies_is_quarantined_and_the_others_are_read(partition, tmp_path):
    fatal = partition.files["output"].iloc[1]
    uid = pydicom.dcmread(partition.deidentified / fatal, stop_before_pixels=True).SOPInstanceUID

    findings, report = find_phi(partition.files, partition.incoming, partition.deidentified,
                                FatalFinder(str(uid)), tmp_path / "quarantine", workers=2)

    assert report.files == 3 and list(report.failed) == [fatal]
    assert report.failed[fatal].startswith("text could not be read: its process died")
    assert quarantined_files(tmp_path / "quarantine") == {fatal}
    assert findings.empty
