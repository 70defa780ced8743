"""`deid-pipeline transcode`: exit codes, one-line errors, outputs and quarantine."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread, uid

from deid_pipeline.cli import EXIT_OK, EXIT_QUARANTINE, EXIT_USAGE, main
from deid_pipeline.core.codecs import encode_pixels
from deid_pipeline_tests.core.test_codecs import DESCRIPTIONS, make_image


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    for name, syntax in [("a/ct.dcm", uid.ExplicitVRLittleEndian), ("b/ct.dcm", uid.RLELossless)]:
        ds, pixels = make_image(DESCRIPTIONS["mono2-s12"])
        encode_pixels(ds, pixels, syntax)
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(src / name, enforce_file_format=True)
    return src


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("deid-pipeline: error: "), err
    return err


def test_transcodes_a_tree(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transcode", str(tree), str(tmp_path / "out"), "--syntax", "j2k-lossless"]) == (
        EXIT_OK)
    assert "transcode: 2 transcoded, 0 copied unchanged, 0 quarantined" in capsys.readouterr().out
    for name in ("a/ct.dcm", "b/ct.dcm"):
        assert dcmread(tmp_path / "out" / name).file_meta.TransferSyntaxUID == (
            uid.JPEG2000Lossless)


def test_accepts_a_uid_and_prints_fallback_notes(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transcode", str(tree), str(tmp_path / "out"),
                 "--syntax", uid.JPEGBaseline8Bit]) == EXIT_OK
    out = capsys.readouterr().out
    assert "note: 2× JPEG Baseline (Process 1) cannot hold this image" in out


def test_quarantine_exits_3(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    quarantine = tmp_path / "q"
    code = main(["transcode", str(tree), str(tmp_path / "out"), "--syntax", "rle",
                 "--quarantine", str(quarantine)])
    assert code == EXIT_QUARANTINE
    assert "1 copied unchanged, 1 quarantined" in capsys.readouterr().out
    assert (quarantine / "broken.dcm").is_file()
    assert (quarantine / "broken.dcm.reason.txt").is_file()
    assert not (tmp_path / "out" / "broken.dcm").exists()


def test_default_quarantine_is_beside_the_output(tree: Path, tmp_path: Path) -> None:
    (tree / "junk.dcm").write_bytes(b"junk")
    assert main(["transcode", str(tree), str(tmp_path / "out"), "--syntax", "rle"]) == (
        EXIT_QUARANTINE)
    assert (tmp_path / "out-quarantine" / "junk.dcm.reason.txt").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--syntax", "jpeg2001"], "unknown or unwritable transfer syntax 'jpeg2001'"),
        (["--syntax", uid.ExplicitVRBigEndian], "unknown or unwritable transfer syntax"),
        ([], "the following arguments are required: --syntax"),
    ],
)
def test_bad_syntax_is_a_one_line_usage_error(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str],
    message: str
) -> None:
    assert main(["transcode", str(tree), str(tmp_path / "out"), *arguments]) == EXIT_USAGE
    assert message in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("dst", "quarantine", "message"),
    [
        ("in/out", None, "the output folder must not be inside the input folder"),
        ("out", "out/q", "the quarantine folder must not be inside the output folder"),
        ("out", "in", "the quarantine folder must not be inside the input folder"),
    ],
)
def test_nested_folders_are_usage_errors(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], dst: str,
    quarantine: str | None, message: str
) -> None:
    arguments = ["transcode", str(tree), str(tmp_path / dst), "--syntax", "rle"]
    if quarantine:
        arguments += ["--quarantine", str(tmp_path / quarantine)]
    assert main(arguments) == EXIT_USAGE
    assert message in one_line_error(capsys)


def test_missing_input_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transcode", str(tmp_path / "nope"), str(tmp_path / "out"),
                 "--syntax", "rle"]) == EXIT_USAGE
    assert "input folder not found" in one_line_error(capsys)
