"""Values read from and written to raw bytes agree with pydicom's own decoding and encoding."""

import io

import pydicom
import pytest
from pydicom.dataset import Dataset

from deid_pipeline.core.deid.raw_text import ascii_element, ascii_values
from deid_pipeline_tests.dicom_factory import realistic_image


def read_back(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


@pytest.mark.parametrize("implicit", [False, True])
def test_ascii_values_match_pydicoms_decoding_for_every_text_element(implicit):
    ds = realistic_image()
    ds.OtherPatientIDs = ["ID 1 ", "ID2"]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    raw_ds, decoded_ds = read_back(ds), read_back(ds)
    compared = 0
    for elem in decoded_ds:
        raw = raw_ds.get_item(elem.tag, keep_deferred=True)
        values = ascii_values(raw, elem.VR)
        if values is None:
            continue
        expected = elem.value if elem.VM > 1 else [elem.value]
        assert values == [str(v) for v in expected if str(v)], elem.keyword
        compared += 1
    assert compared > 20


def test_non_ascii_bytes_are_left_to_pydicom():
    ds = realistic_image()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Jürgen"
    raw = read_back(ds).get_item(0x00100010, keep_deferred=True)
    assert ascii_values(raw, "PN") is None


def test_an_ascii_element_is_written_as_pydicom_would_write_the_value():
    source = read_back(realistic_image())
    raw = source.get_item(0x0020000D, keep_deferred=True)
    source[0x0020000D] = ascii_element(raw, "UI", ["2.25.123"])
    source.StudyDate = "20200101"
    expected = read_back(source)

    assert expected.StudyInstanceUID == "2.25.123"
    assert len(expected.get_item(0x0020000D, keep_deferred=True).value) % 2 == 0
    assert ascii_element(raw, "UI", ["2.25.ü"]) is None
