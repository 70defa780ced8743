from deid_pipeline.core.tree_metadata import tree_metadata
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write


def test_every_file_is_flattened_and_those_that_cannot_be_read_are_counted(tmp_path):
    write(ct_with_nested_and_private(), tmp_path / "a" / "1.dcm")

    read = tree_metadata(tmp_path, ["a/1.dcm", "gone.dcm"])

    assert read.unparsable == 1
    assert set(read.frame["file"]) == {"a/1.dcm"}
    assert read.frame.loc[read.frame["keyword"] == "PatientID", "value"].tolist() == ["MRN12345"]
