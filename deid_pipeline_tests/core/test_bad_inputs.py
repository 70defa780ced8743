"""Discovery, manifest and quarantine on inputs that are not plain files: links, FIFOs, names
that are not UTF-8 or hold newlines."""

import os
import stat

import pandas as pd
import pytest

from deid_pipeline.core.discovery import FileKind, discover
from deid_pipeline.core.ingest import build_manifest
from deid_pipeline.core.quarantine import quarantine_copy, read_reason
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write


@pytest.fixture
def drop(tmp_path):
    root = tmp_path / "drop"
    write(ct_with_nested_and_private(), root / "a" / "1.dcm")
    (root / "a" / "inside.dcm").symlink_to("1.dcm")
    write(ct_with_nested_and_private(), tmp_path / "elsewhere" / "2.dcm")
    (root / "outside.dcm").symlink_to(tmp_path / "elsewhere" / "2.dcm")
    (root / "dangling.dcm").symlink_to(root / "gone.dcm")
    (root / "folder").symlink_to(root / "a", target_is_directory=True)
    (root / "loop").symlink_to(root / "loop")
    os.mkfifo(root / "pipe.dcm")  # opened, it would block the reader for good
    (root / os.fsdecode(b"latin1-\xd8.dcm")).write_bytes(b"junk")
    return root


def test_links_are_listed_with_their_refusal_and_never_followed_out(drop):
    found = {source.relpath: source for source in discover(drop)}

    assert sorted(found) == ["a/1.dcm", "a/inside.dcm", "dangling.dcm", "folder",
                             "latin1-\\xd8.dcm", "loop", "outside.dcm"]
    assert found["a/inside.dcm"].refusal is None and found["a/inside.dcm"].kind is FileKind.DICOM
    assert found["outside.dcm"].refusal == "symbolic link leading outside the input folder"
    assert found["dangling.dcm"].refusal == "dangling symbolic link"
    assert found["folder"].refusal == "symbolic link to a folder (not followed)"
    assert found["loop"].refusal == "symbolic link that cannot be resolved"
    assert all(found[name].kind is FileKind.UNKNOWN
               for name in ("outside.dcm", "dangling.dcm", "folder", "loop"))


def test_a_name_that_is_not_utf8_is_listed_as_text_that_any_table_takes(drop):
    (source,) = [s for s in discover(drop) if s.relpath.startswith("latin1")]

    assert source.relpath.encode("utf-8") == b"latin1-\\xd8.dcm"
    assert source.path.read_bytes() == b"junk"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode")
def test_an_unreadable_file_is_refused(tmp_path):
    (tmp_path / "secret.dcm").write_bytes(b"x")
    (tmp_path / "secret.dcm").chmod(0)

    (source,) = discover(tmp_path)

    assert source.refusal == "cannot be read (permission denied)"


def test_the_manifest_records_refusals_without_opening_the_file(drop):
    manifest = build_manifest(drop).set_index("relpath")

    assert manifest.loc["dangling.dcm", "reason"] == "dangling symbolic link"
    assert not manifest.loc["outside.dcm", "readable"]
    assert pd.isna(manifest.loc["outside.dcm", "sha256"])  # someone else's file: not hashed
    assert manifest.loc["a/inside.dcm", "readable"]


def test_a_quarantined_link_is_recorded_not_copied(drop, tmp_path):
    quarantine = tmp_path / "quarantine"
    quarantine_copy(drop / "outside.dcm", quarantine / "x.bin", quarantine / "x.reason.txt",
                    "outside.dcm", "symbolic link leading outside the input folder")

    assert not (quarantine / "x.bin").exists()
    assert read_reason(quarantine / "x.reason.txt") == (
        "outside.dcm", "symbolic link leading outside the input folder")


def test_a_reason_file_is_one_line_whatever_the_name_and_only_the_owner_reads_it(tmp_path):
    source = tmp_path / "in.bin"
    source.write_bytes(b"data")
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir(mode=0o777)
    os.chmod(quarantine, 0o777)
    name = "two\nlines\tand a \\ backslash\r.dcm"

    quarantine_copy(source, quarantine / "x.bin", quarantine / "x.reason.txt", name, "bad\tone")

    text = (quarantine / "x.reason.txt").read_text()
    assert text.count("\n") == 1 and text.count("\t") == 1
    assert read_reason(quarantine / "x.reason.txt") == (name, "bad\tone")
    assert (quarantine / "x.bin").read_bytes() == b"data"
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o700
    for path in quarantine.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_folder_that_cannot_be_read_is_refused_and_not_entered(tmp_path, deny_access):
    write(ct_with_nested_and_private(), tmp_path / "open" / "1.dcm")
    write(ct_with_nested_and_private(), tmp_path / "closed" / "2.dcm")
    deny_access(tmp_path / "closed")

    found = {source.relpath: source for source in discover(tmp_path)}

    assert sorted(found) == ["closed", "open/1.dcm"]
    assert found["closed"].refusal == "folder cannot be read (permission denied)"
    assert found["closed"].kind is FileKind.UNKNOWN and found["open/1.dcm"].refusal is None
