from deid_pipeline.core.metadata import metadata_frame, read_element_rows
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write


def test_rows_reach_nested_sequences_private_blocks_and_file_meta(tmp_path):
    path = write(ct_with_nested_and_private(), tmp_path / "x.dcm")

    frame = metadata_frame(read_element_rows(path, "x.dcm")).set_index("path")

    nested = frame.loc["(0040,0275)[0].(0040,0008)[0].(0008,0100)"]
    assert nested["value"] == "CTCHEST" and nested["depth"] == 2 and nested["keyword"] == "CodeValue"
    private = frame.loc["(0011,1010)"]
    assert private["private_creator"] == "ACME_PATIENT_01" and private["value"] == "DOE^JANE"
    assert frame.loc["(0002,0010)", "value"] == "1.2.840.10008.1.2.1"
    assert frame.loc["(0040,0275)", "vr"] == "SQ" and frame.loc["(0040,0275)", "length"] == 1
    assert "(7FE0,0010)" not in frame.index  # pixel data is not metadata
