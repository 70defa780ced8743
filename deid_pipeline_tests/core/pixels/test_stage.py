"""The pixel stage on synthetic files whose burned-in words and boxes are known."""

import json

import numpy as np
import pydicom
import pytest

from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.pixels.phi import ages_of
from deid_pipeline.core.pixels.redact import padded
from deid_pipeline.core.pixels.stage import PixelRedactor
from deid_pipeline.core.transcode import decode_pixels


@pytest.fixture(scope="module")
def redactor():
    return PixelRedactor()


def corpus_files(small_corpus, *, phi: bool, frames: int = 1):
    for path in sorted(small_corpus.root.rglob("*.dcm")):
        truth = json.loads(path.with_suffix(".json").read_text())
        if truth["frames"] == frames and any(w["is_phi"] for w in truth["words"]) == phi and (
                phi or not truth["words"]):
            yield path, truth


def redact(redactor, path):
    ds = pydicom.dcmread(path)
    original = pydicom.dcmread(path)
    result = redactor.redact(ds, gather(original), sex=str(original.get("PatientSex", "")),
                             ages=ages_of(original))
    return original, ds, result


def test_burned_in_phi_is_hidden_and_nothing_else_changes(redactor, small_corpus):
    path, truth = next(corpus_files(small_corpus, phi=True))
    original, ds, result = redact(redactor, path)

    assert result.changed
    before, after = decode_pixels(original), decode_pixels(ds)
    rows, columns = int(ds.Rows), int(ds.Columns)
    changed = np.asarray(before != after)
    changed = changed.any(axis=-1) if changed.ndim == 3 else changed
    for word in (w for w in truth["words"] if w["is_phi"]):
        x1, y1, x2, y2 = word["bbox"]
        assert changed[y1:y2 + 1, x1:x2 + 1].mean() > 0.3, word["category"]
    allowed = np.zeros((rows, columns), dtype=bool)
    for x1, y1, x2, y2 in (padded(b, rows, columns) for b in result.phi_boxes):
        allowed[y1:y2 + 1, x1:x2 + 1] = True
    assert not (changed & ~allowed).any()  # only inside the redacted boxes
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
                    "PhotometricInterpretation", "SamplesPerPixel"):
        assert ds[keyword].value == original[keyword].value, keyword
    assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert ds.BurnedInAnnotation == "NO"
    assert all(f.reason for f in result.findings)  # every box says why


def test_a_file_without_text_keeps_its_pixel_data_bytes(redactor, small_corpus):
    path, _ = next(corpus_files(small_corpus, phi=False))
    original, ds, result = redact(redactor, path)
    assert not result.changed and not result.phi_boxes
    assert ds.PixelData == original.PixelData


def test_every_frame_of_a_multi_frame_image_is_redacted(redactor, small_corpus):
    candidates = [p for frames in (8, 9, 10, 11, 12)
                  for p in corpus_files(small_corpus, phi=True, frames=frames)]
    path, truth = candidates[0]
    original, ds, result = redact(redactor, path)
    before, after = decode_pixels(original), decode_pixels(ds)
    word = next(w for w in truth["words"] if w["is_phi"])
    x1, y1, x2, y2 = word["bbox"]
    for frame in range(int(ds.NumberOfFrames)):
        assert (before[frame, y1:y2 + 1, x1:x2 + 1] != after[frame, y1:y2 + 1, x1:x2 + 1]).any()


def test_phi_the_header_does_not_hold_is_caught(redactor):
    import cv2

    from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private

    ds = ct_with_nested_and_private()
    ds.Rows = ds.Columns = 256
    ink = np.zeros((256, 256), dtype=np.uint8)  # OpenCV draws text on 8-bit images only
    cv2.putText(ink, "Read by KQZ", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    frame = np.where(ink > 0, 4095, 400).astype("<u2")
    ds.PixelData = frame.tobytes()
    result = redactor.redact(ds, gather(ds))
    reasons = {f.reason for f in result.findings if f.is_phi}
    assert result.changed and "pattern:initials" in reasons


def test_the_deid_cli_records_the_clean_pixel_data_option(tmp_path, deid_secret):
    from deid_pipeline.cli import main
    from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

    write(ct_with_nested_and_private(), tmp_path / "in" / "1.dcm")
    assert main(["deid", str(tmp_path / "in"), str(tmp_path / "out"), "--work",
                 str(tmp_path / "work"), "--jobs", "1"]) == 0
    (output,) = (tmp_path / "out").rglob("*.dcm")
    codes = [item.CodeValue for item in pydicom.dcmread(output).DeidentificationMethodCodeSequence]
    assert codes[0] == "113100" and "113101" in codes


def test_faint_text_on_a_colour_header_band_is_read(redactor):
    import cv2

    from deid_pipeline.core.pixels.views import reading_views
    from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private

    ds = ct_with_nested_and_private()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PlanarConfiguration = 512, 512, 3, 0
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "RGB", 8, 8, 7
    ink = np.zeros((512, 512), dtype=np.uint8)
    cv2.putText(ink, "DOE JANE 03/01/2012", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1,
                cv2.LINE_AA)
    band = np.zeros((512, 512), dtype=np.uint8)
    band[:36] = 25  # an ultrasound-style dark header band with text ten levels brighter
    grey = np.maximum(band, (25 + ink.astype(np.uint16) * 10 // 255) * (ink > 0)).astype(np.uint8)
    frame = np.repeat(grey[..., np.newaxis], 3, axis=-1)
    ds.PixelData = frame.tobytes()

    assert "local" in [view.name for view in reading_views(frame, ds)]
    result, _ = redactor.find(ds, gather(ds))
    assert "metadata:name" in {f.reason for f in result.findings if f.is_phi}
