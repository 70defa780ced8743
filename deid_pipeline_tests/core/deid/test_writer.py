"""The split writer writes what pydicom writes and hands the gate every byte but the pixels."""

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from deid_pipeline.core.deid.writer import write_dicom
from deid_pipeline_tests.dicom_factory import realistic_image, write


@pytest.mark.parametrize("syntax", [None, ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless])
def test_written_bytes_equal_pydicoms_and_the_returned_bytes_hold_all_but_the_pixels(
        tmp_path, syntax):
    ds = realistic_image(pixels=(32, 32))
    if syntax == RLELossless:
        ds.compress(RLELossless)
    elif syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    ds.DataSetTrailingPadding = b"\x00" * 4
    source = write(ds, tmp_path / "in.dcm")
    expected, ours = tmp_path / "expected.dcm", tmp_path / "ours.dcm"
    pydicom.dcmread(source).save_as(expected, enforce_file_format=True)

    returned = write_dicom(pydicom.dcmread(source, defer_size="1 KB"), ours)

    assert ours.read_bytes() == expected.read_bytes()
    assert ds.PatientName.family_name.encode() in returned
    # Every byte but the pixel data element's: what comes before it and what comes after.
    written = ours.read_bytes()
    pixel_tag = b"\x7f\xe0\x00\x10" if syntax == ExplicitVRBigEndian else b"\xe0\x7f\x10\x00"
    start = written.rindex(pixel_tag)
    assert returned[:start] == written[:start]
    assert written.endswith(returned[start:]) and len(returned) > start
    assert len(written) - len(returned) >= len(pydicom.dcmread(ours).PixelData)


def test_a_deflated_data_set_gives_no_bytes_to_screen(tmp_path: Path):
    ds = realistic_image(pixels=(8, 8))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    source = write(ds, tmp_path / "in.dcm")
    assert write_dicom(pydicom.dcmread(source), tmp_path / "out.dcm") is None
    assert pydicom.dcmread(tmp_path / "out.dcm").PatientName == ds.PatientName
