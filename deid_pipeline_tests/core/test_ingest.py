from deid_pipeline.core.ingest import build_manifest
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write


def test_manifest_describes_readable_files_and_keeps_unreadable_ones_with_a_reason(tmp_path):
    write(ct_with_nested_and_private(), tmp_path / "DOE_JANE" / "1.dcm")
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 7)
    (tmp_path / "notes.bin").write_bytes(b"free text about DOE^JANE")

    manifest = build_manifest(tmp_path).set_index("relpath")

    good = manifest.loc["DOE_JANE/1.dcm"]
    assert bool(good["readable"]) and good["modality"] == "CT" and good["number_of_frames"] == 1
    assert good["transfer_syntax_uid"] == "1.2.840.10008.1.2.1"
    assert len(good["sha256"]) == 64
    for bad in ["broken.dcm", "notes.bin"]:
        assert not manifest.loc[bad, "readable"]
        assert manifest.loc[bad, "reason"].startswith("not readable as DICOM")
        assert "DOE" not in manifest.loc[bad, "reason"]
