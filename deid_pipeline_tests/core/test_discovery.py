from deid_pipeline.core.discovery import FileKind, discover
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write


def test_discover_tells_kinds_and_skips_sidecars_and_hidden_files(tmp_path):
    write(ct_with_nested_and_private(), tmp_path / "a" / "IM0001")  # DICOM without an extension
    (tmp_path / "a" / "IM0001.json").write_text("{}")
    (tmp_path / "answer_key.db").write_bytes(b"SQLite format 3\x00")
    (tmp_path / ".partial.dcm.tmp").write_bytes(b"half")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.dcm").write_bytes(b"x")
    (tmp_path / "slide.svs").write_bytes(b"II*\x00")
    (tmp_path / "junk.bin").write_bytes(b"not dicom")

    found = {f.relpath: f.kind for f in discover(tmp_path)}

    assert found == {
        "a/IM0001": FileKind.DICOM,
        "junk.bin": FileKind.UNKNOWN,
        "slide.svs": FileKind.SLIDE,
    }


def test_discover_order_is_stable(tmp_path):
    for name in ["b.dcm", "a.dcm", "c/d.dcm"]:
        write(ct_with_nested_and_private(), tmp_path / name)
    assert [f.relpath for f in discover(tmp_path)] == ["a.dcm", "b.dcm", "c/d.dcm"]
