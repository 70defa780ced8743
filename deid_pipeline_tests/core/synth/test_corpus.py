import hashlib
import json
import re
import sqlite3
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.dataset import Dataset

from deid_pipeline.core.codecs import ENCODABLE_SYNTAXES
from deid_pipeline.core.synth import generate_corpus
from deid_pipeline.core.synth.answer_key import ACTIONS, CHECK_FIELDS, COLUMNS, TABLE
from deid_pipeline.core.synth.catalog import plan_corpus
from deid_pipeline.core.synth.corpus import instance_path
from deid_pipeline.core.synth.rendering import render_image

PATIENTS = 4
SEED = 0
LOSSLESS = {uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian,
            uid.DeflatedExplicitVRLittleEndian, uid.RLELossless, uid.JPEGLosslessSV1,
            uid.JPEGLSLossless, uid.JPEG2000Lossless, uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL}
TAG = r"\([0-9a-f]{4},[0-9a-f]{4}\)"
PRIVATE_TAG = r'\([0-9a-f]{4},"[^"]+",[0-9a-f]{2}\)'
TAG_PATH = re.compile(rf"^(<{TAG}>\[<\d{{4}}>\])*<({TAG}|{PRIVATE_TAG})>$")
PATH_STEP = re.compile(r'<\(([0-9a-f]{4}),(?:([0-9a-f]{4})|"([^"]+)",([0-9a-f]{2}))\)>(?:\[<(\d{4})>\])?')


@pytest.fixture(scope="module")
def corpus(small_corpus):
    assert (small_corpus.patients, SEED) == (PATIENTS, 0)
    return small_corpus


@pytest.fixture(scope="module")
def datasets(corpus) -> dict[Path, Dataset]:
    return {path: pydicom.dcmread(path) for path in sorted(corpus.root.rglob("*.dcm"))}


@pytest.fixture(scope="module")
def answers(corpus) -> dict[str, dict]:
    with sqlite3.connect(corpus.answer_key) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(f"SELECT * FROM {TABLE}").fetchall()
    connection.close()
    return {row["SOPInstanceUID"]: dict(row) for row in rows}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_gives_identical_files_and_other_seed_differs(corpus, tmp_path):
    again = generate_corpus(tmp_path / "again", PATIENTS, SEED)
    assert _tree(again.root) == _tree(corpus.root)  # the answer key included

    other = _tree(generate_corpus(tmp_path / "other", 1, SEED + 1).root)
    dicom_bytes = {data for name, data in _tree(corpus.root).items() if name.endswith(".dcm")}
    assert not dicom_bytes & {data for name, data in other.items() if name.endswith(".dcm")}


def test_files_are_valid_dicom_that_decode_with_the_declared_shape(corpus, datasets):
    assert len(datasets) == corpus.files
    for path, ds in datasets.items():
        assert path.read_bytes()[128:132] == b"DICM"
        meta = ds.file_meta
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert meta.ImplementationClassUID
        frames = int(ds.get("NumberOfFrames", 1))
        shape = (*((frames,) if frames > 1 else ()), ds.Rows, ds.Columns,
                 *((3,) if ds.SamplesPerPixel == 3 else ()))
        assert ds.pixel_array.shape == shape, path


def test_files_are_laid_out_like_a_site_export_with_a_sidecar_each(corpus, datasets):
    for path, ds in datasets.items():
        patient, study, series = path.parts[-4:-1]
        assert patient == ds.PatientID
        assert study.startswith(f"{ds.StudyDate}-")
        assert series == f"{ds.SeriesNumber}-{ds.Modality}"
        assert path.name == f"{ds.InstanceNumber:04d}.dcm"
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["filename"] == path.name
        assert (sidecar["rows"], sidecar["columns"]) == (ds.Rows, ds.Columns)
        assert sidecar["frames"] == int(ds.get("NumberOfFrames", 1))


def test_corpus_covers_every_syntax_and_pixel_description(datasets):
    syntaxes = {ds.file_meta.TransferSyntaxUID for ds in datasets.values()}
    assert syntaxes == set(ENCODABLE_SYNTAXES)
    photometrics = {ds.PhotometricInterpretation for ds in datasets.values()}
    assert {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "YBR_FULL"} <= photometrics
    assert photometrics & {"RGB", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"}
    assert {ds.PixelRepresentation for ds in datasets.values()} == {0, 1}
    assert {8, 12, 16} <= {ds.BitsStored for ds in datasets.values()}
    assert any(int(ds.get("NumberOfFrames", 1)) > 1 and ds.SamplesPerPixel == 1
               for ds in datasets.values())
    assert any(int(ds.get("NumberOfFrames", 1)) > 1 and ds.SamplesPerPixel == 3
               for ds in datasets.values())
    assert {"CT", "MR", "CR", "DX", "US", "XA", "MG", "SC"} <= {ds.Modality for ds in datasets.values()}
    assert {uid.UltrasoundMultiFrameImageStorage, uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
            uid.DigitalMammographyXRayImageStorageForPresentation} <= {
        ds.SOPClassUID for ds in datasets.values()}
    assert any(ds.SpecificCharacterSet == "ISO_IR 192" and not str(ds.PatientName).isascii()
               for ds in datasets.values())


def _depth(ds: Dataset) -> int:
    return max((1 + max((_depth(item) for item in elem.value), default=0)
                for elem in ds if elem.VR == "SQ"), default=0)


def test_files_hold_nested_sequences_private_blocks_and_resolvable_references(datasets):
    sop_uids = {ds.SOPInstanceUID for ds in datasets.values()}
    study_uids = {ds.StudyInstanceUID for ds in datasets.values()}
    series_uids = {ds.SeriesInstanceUID for ds in datasets.values()}
    frames_of_reference = defaultdict(set)
    for ds in datasets.values():
        assert _depth(ds) >= 2
        assert ds.RequestAttributesSequence[0].ScheduledProtocolCodeSequence[0].CodeMeaning
        name = ds.private_block(0x0033, "SITE_PACS_DEMOGRAPHICS")[0x10].value
        if isinstance(name, bytes):  # UN: an implicit VR file, creator unknown to pydicom
            name = name.decode("utf-8").rstrip()
        assert name == str(ds.PatientName).replace("^", " ")
        assert ds.private_block(0x0031, "SITE_PROTOCOL_01")[0x10].value
        if ds.Manufacturer.startswith("GE"):
            assert ds.private_block(0x0019, "GEMS_ACQU_01")[0x92].VR in ("SL", "UN")
        for keyword in ("ReferencedImageSequence", "SourceImageSequence"):
            for item in ds.get(keyword, []):
                assert item.ReferencedSOPInstanceUID in sop_uids
        for item in ds.get("ReferencedStudySequence", []):
            assert item.ReferencedSOPInstanceUID in study_uids
        for item in ds.get("ReferencedSeriesSequence", []):
            assert item.SeriesInstanceUID in series_uids
            assert {i.ReferencedSOPInstanceUID for i in item.ReferencedInstanceSequence} <= sop_uids
        if "FrameOfReferenceUID" in ds:
            frames_of_reference[ds.StudyInstanceUID].add(ds.FrameOfReferenceUID)
    assert frames_of_reference
    assert all(len(uids) == 1 for uids in frames_of_reference.values())
    assert any("GEMS_ACQU_01" in ds.private_creators(0x0019) for ds in datasets.values())


def test_answer_key_has_the_midi_b_schema_and_every_check_kind(corpus, datasets, answers):
    with sqlite3.connect(corpus.answer_key) as connection:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({TABLE})")]
    connection.close()
    assert tuple(columns) == COLUMNS
    assert set(answers) == {ds.SOPInstanceUID for ds in datasets.values()}
    actions = set()
    for ds in datasets.values():
        row = answers[ds.SOPInstanceUID]
        assert (row["StudyInstanceUID"], row["SeriesInstanceUID"], row["PatientID"]) == (
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.PatientID)
        assert (row["Modality"], row["SOPClassUID"], row["scope"]) == (
            ds.Modality, ds.SOPClassUID, "<Instance>")
        checks = json.loads(row["AnswerData"])
        assert list(checks) == [str(i) for i in range(len(checks))]
        for check in checks.values():
            assert tuple(check) == CHECK_FIELDS
            assert all(value.startswith("<") and value.endswith(">") for value in check.values())
            assert re.fullmatch(f"<{TAG}>", check["tag"])
            assert TAG_PATH.match(check["tag_ds"]), check["tag_ds"]
            actions.add(check["action"][1:-1])
    assert actions == set(ACTIONS) == set(corpus.checks)


def _element(ds: Dataset, tag_ds: str):
    element = None
    for group, elem, creator, private_elem, item in PATH_STEP.findall(tag_ds):
        if creator:
            element = ds.private_block(int(group, 16), creator)[int(private_elem, 16)]
        else:
            element = ds[int(group + elem, 16)]
        if item:
            ds = element.value[int(item)]
    return element


def test_answer_key_checks_point_at_the_values_the_files_hold(datasets, answers):
    for ds in datasets.values():
        for check in json.loads(answers[ds.SOPInstanceUID]["AnswerData"]).values():
            if check["action"].startswith("<pixels_"):
                continue
            element = _element(ds, check["tag_ds"])
            if element.VR == "UN":  # private element of an implicit VR file, unknown to pydicom
                continue
            value = element.value
            text = "\\".join(map(str, value)) if element.VM > 1 else str(value)
            assert f"<{text}>" == check["value"], check


def test_pixels_retained_digest_is_the_files_pixel_data(datasets, answers):
    retained = 0
    for ds in datasets.values():
        for check in json.loads(answers[ds.SOPInstanceUID]["AnswerData"]).values():
            if check["action"] == "<pixels_retained>":
                assert check["action_text"] == f"<{hashlib.md5(ds.PixelData).hexdigest()}>"
                retained += 1
    assert retained


def test_burned_words_have_boxes_over_the_pixels_they_changed(corpus, datasets, answers):
    plan = plan_corpus(PATIENTS, SEED)
    with_words = without_words = 0
    for study in plan.studies:
        for series in study.series:
            for instance in series.instances:
                path = corpus.root / instance_path(study, series, instance)
                image = render_image(study, series, instance)
                sidecar = json.loads(path.with_suffix(".json").read_text())
                words = sidecar["words"]
                with_words += bool(words)
                without_words += not words
                assert [w["text"] for w in words] == [
                    word.text for line in image.lines for word in line.words]
                changed = (image.drawn != image.background).any(axis=(0, 3))
                for word in words:
                    x1, y1, x2, y2 = word["bbox"]
                    assert 0 <= x1 <= x2 < sidecar["columns"] and 0 <= y1 <= y2 < sidecar["rows"]
                    box = changed[y1:y2 + 1, x1:x2 + 1]
                    # tight: every edge of the box holds a pixel the word changed
                    assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
                    assert word["is_phi"] == (word["category"] not in ("label", "annotation"))
                hidden = [c for c in json.loads(answers[instance.sop_instance_uid]["AnswerData"])
                          .values() if c["action"] == "<pixels_hidden>"]
                assert len(hidden) == sum(line.is_phi for line in image.lines)
                if series.transfer_syntax in LOSSLESS and series.pixels.photometric != "YBR_FULL":
                    np.testing.assert_array_equal(datasets[path].pixel_array, image.pixels)
    assert with_words and without_words
