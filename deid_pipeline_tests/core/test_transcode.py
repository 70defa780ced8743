"""Transcoding through real files: every readable syntax to every writable one, pydicom's bundled
files as real-world inputs, the fallback rule, the lossy policy, and quarantine of corrupt data.

Lossless outputs must decode bit for bit to what the input decodes to (both as stored, see
`decode_pixels`); lossy outputs to at least LOSSY_PSNR_FLOOR_DB against the input, measured
against the span of the input's values (stricter than against the stored range when, as in CT,
an image uses 12 of 16 stored bits). That is the floor of one new generation over an input that
may itself be lossy.
"""

from __future__ import annotations

import filecmp
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread, uid
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames

from deid_pipeline.core.codecs import ENCODABLE_SYNTAXES, encodable, encode_pixels
from deid_pipeline.core.transcode import (
    LOSSY_SYNTAXES,
    SYNTAX_NAMES,
    CodecError,
    choose_output_syntax,
    decode_pixels,
    resolve_syntax,
    transcode_file,
    transcode_tree,
    write_pixels_back,
)
from deid_pipeline_tests.core.test_codecs import DESCRIPTIONS, PixelDescription, make_image

LOSSY_PSNR_FLOOR_DB = 38
# Below one 16 x 16 JPEG block a sharp edge dominates the error of so few pixels.
TINY_IMAGE_SIDE, TINY_IMAGE_PSNR_FLOOR_DB = 16, 20
ODD_ROWS, ODD_COLUMNS = 37, 53
WRITABLE = sorted(ENCODABLE_SYNTAXES)
NAME_OF = {syntax: name for name, syntax in SYNTAX_NAMES.items()}


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def psnr_db(expected: np.ndarray, got: np.ndarray) -> float:
    """Against the span of the expected values."""
    expected, got = expected.astype(np.float64), got.astype(np.float64)
    error = np.mean((expected - got) ** 2)
    span = max(np.ptp(expected), 1)
    return float("inf") if error == 0 else 10 * np.log10(span**2 / error)


def assert_same_image(expected: np.ndarray, got: np.ndarray, syntax: str) -> None:
    assert got.shape == expected.shape
    if syntax in LOSSY_SYNTAXES:
        psnr = psnr_db(expected, got)
        tiny = min(got.shape[-3:-1] if got.shape[-1] == 3 else got.shape[-2:]) < TINY_IMAGE_SIDE
        assert psnr >= (TINY_IMAGE_PSNR_FLOOR_DB if tiny else LOSSY_PSNR_FLOOR_DB), f"{psnr:.1f} dB"
    else:
        np.testing.assert_array_equal(got, expected)


def assert_same_pixels(source: Dataset, output: Dataset) -> None:
    """Lossless: the same samples as stored. Lossy: close in RGB, since a lossy syntax may
    store colour in another space (YBR_FULL_422 for RGB input in JPEG Baseline)."""
    as_rgb = output.file_meta.TransferSyntaxUID in LOSSY_SYNTAXES
    assert_same_image(decode_pixels(source, as_rgb=as_rgb), decode_pixels(output, as_rgb=as_rgb),
                      output.file_meta.TransferSyntaxUID)


def source_file(tmp_path: Path, description: PixelDescription, syntax: str, frames: int = 1,
                rows: int = ODD_ROWS, columns: int = ODD_COLUMNS) -> Path:
    ds, pixels = make_image(description, rows, columns, frames)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    encode_pixels(ds, pixels, syntax)
    return save(ds, tmp_path / "in" / "source.dcm")


def assert_transcodes(source: Path, target: str, tmp_path: Path) -> Dataset:
    """Transcode, then check syntax, pixels, pixel description, UID and lossy attributes."""
    source_ds = dcmread(source)
    destination = tmp_path / "out" / "output.dcm"
    outcome = transcode_file(source, destination, NAME_OF[target])
    output_ds = dcmread(destination)

    syntax = output_ds.file_meta.TransferSyntaxUID
    assert syntax == outcome.syntax
    if syntax != target:
        assert syntax not in LOSSY_SYNTAXES and outcome.note, "a fallback is lossless and noted"
    source_syntax = source_ds.file_meta.TransferSyntaxUID
    if source_syntax == syntax:
        assert outcome.action == "copied" and filecmp.cmp(source, destination, shallow=False)
    for keyword in ("SamplesPerPixel", "BitsAllocated", "BitsStored", "PixelRepresentation",
                    "Rows", "Columns"):
        assert output_ds[keyword].value == source_ds[keyword].value, keyword
    if output_ds.PhotometricInterpretation != source_ds.PhotometricInterpretation:
        assert "Photometric Interpretation" in (outcome.note or "")
    assert_same_pixels(source_ds, output_ds)

    lossy_generation = outcome.action == "transcoded" and syntax in LOSSY_SYNTAXES
    if lossy_generation:
        assert output_ds.SOPInstanceUID != source_ds.SOPInstanceUID
        assert output_ds.ImageType[0] == "DERIVED"
    else:
        assert output_ds.SOPInstanceUID == source_ds.SOPInstanceUID
    assert output_ds.file_meta.MediaStorageSOPInstanceUID == output_ds.SOPInstanceUID
    if lossy_generation or source_syntax in LOSSY_SYNTAXES:
        assert output_ds.LossyImageCompression == "01"
        assert float(np.ravel(output_ds.LossyImageCompressionRatio)[-1]) > 0
    else:
        assert output_ds.get("LossyImageCompression") == source_ds.get("LossyImageCompression")
    return output_ds


def assert_transcodes_to_every_writable_syntax(source: Path, tmp_path: Path) -> list[Dataset]:
    """One input, every target: reports all failing targets at once."""
    outputs, failures = [], []
    for target in WRITABLE:
        try:
            outputs.append(assert_transcodes(source, target, tmp_path))
        except (AssertionError, CodecError) as exc:
            failures.append(f"to {uid.UID(target).keyword}: {exc}")
    assert not failures, "\n".join(failures)
    return outputs


# Every writable syntax is also an input; the read-only ones come from the bundled files below.
MATRIX = [
    pytest.param(source, name, id=f"{uid.UID(source).keyword}-{name}")
    for name, description in DESCRIPTIONS.items()
    for source in WRITABLE
    if encodable(make_image(description)[0], source) is None
]


@pytest.mark.parametrize(("source_syntax", "description_name"), MATRIX)
def test_round_trip_matrix(source_syntax: str, description_name: str, tmp_path: Path) -> None:
    source = source_file(tmp_path, DESCRIPTIONS[description_name], source_syntax)
    assert_transcodes_to_every_writable_syntax(source, tmp_path)


@pytest.mark.parametrize("source_syntax", [uid.ExplicitVRLittleEndian, uid.HTJ2KLossless,
                                           uid.JPEGBaseline8Bit], ids=lambda s: uid.UID(s).keyword)
def test_multi_frame(source_syntax: str, tmp_path: Path) -> None:
    source = source_file(tmp_path, DESCRIPTIONS["rgb-u8"], source_syntax, frames=3)
    for output in assert_transcodes_to_every_writable_syntax(source, tmp_path):
        assert output.NumberOfFrames == 3
        if output.file_meta.TransferSyntaxUID.is_compressed:
            assert len(list(generate_frames(output.PixelData, number_of_frames=3))) == 3


# pydicom's bundled test files, by syntax (HTJ2K and JPEG Lossless Process 14 are not bundled).
BUNDLED = {
    "CT_small.dcm": uid.ExplicitVRLittleEndian,  # signed 16-bit CT
    "examples_palette.dcm": uid.ExplicitVRLittleEndian,
    "examples_overlay.dcm": uid.ExplicitVRLittleEndian,  # 12 of 16 bits
    "SC_rgb_small_odd.dcm": uid.ExplicitVRLittleEndian,  # 3 x 3
    "SC_ybr_full_422_uncompressed.dcm": uid.ExplicitVRLittleEndian,
    "MR_small_implicit.dcm": uid.ImplicitVRLittleEndian,
    "rtdose.dcm": uid.ImplicitVRLittleEndian,  # 32-bit, 15 frames
    "MR_small_bigendian.dcm": uid.ExplicitVRBigEndian,
    "SC_rgb_small_odd_big_endian.dcm": uid.ExplicitVRBigEndian,
    "image_dfl.dcm": uid.DeflatedExplicitVRLittleEndian,
    "MR_small_RLE.dcm": uid.RLELossless,
    "SC_rgb_rle_2frame.dcm": uid.RLELossless,
    "SC_rgb_rle_16bit.dcm": uid.RLELossless,
    "SC_rgb_rle_32bit.dcm": uid.RLELossless,
    "SC_rgb_jpeg_dcmtk.dcm": uid.JPEGBaseline8Bit,  # YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+np.dcm": uid.JPEGBaseline8Bit,  # YBR_FULL_422
    "SC_rgb_dcmtk_+eb+cr.dcm": uid.JPEGBaseline8Bit,  # RGB
    "SC_rgb_small_odd_jpeg.dcm": uid.JPEGBaseline8Bit,
    "examples_ybr_color.dcm": uid.JPEGBaseline8Bit,  # YBR_FULL_422, 30 frames
    "JPGExtended.dcm": uid.JPEGExtended12Bit,
    "SC_rgb_jpeg_gdcm.dcm": uid.JPEGLosslessSV1,
    "MR_small_jpeg_ls_lossless.dcm": uid.JPEGLSLossless,
    "JPEGLSNearLossless_16.dcm": uid.JPEGLSNearLossless,
    "SC_rgb_jls_lossy_line.dcm": uid.JPEGLSNearLossless,
    "SC_rgb_jls_lossy_sample.dcm": uid.JPEGLSNearLossless,
    "MR_small_jp2klossless.dcm": uid.JPEG2000Lossless,
    "GDCMJ2K_TextGBR.dcm": uid.JPEG2000Lossless,  # YBR_RCT
    "J2K_pixelrep_mismatch.dcm": uid.JPEG2000Lossless,
    "JPEG2000.dcm": uid.JPEG2000,
    "693_J2KI.dcm": uid.JPEG2000,  # signed 14-bit
    "SC_rgb_gdcm_KY.dcm": uid.JPEG2000,  # RGB without the colour transform
}


def bundled(name: str, tmp_path: Path) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"{name} is not bundled with this pydicom"
    return Path(shutil.copy(path, tmp_path / name))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("target", [uid.JPEG2000Lossless, uid.ExplicitVRLittleEndian,
                                    uid.HTJ2KLossless], ids=lambda s: uid.UID(s).keyword)
# Its 30 frames take a second per conversion; the write-back test below covers it.
@pytest.mark.parametrize("name", [name for name in BUNDLED if name != "examples_ybr_color.dcm"])
def test_bundled_files_transcode(name: str, target: str, tmp_path: Path) -> None:
    source = bundled(name, tmp_path)
    assert dcmread(source).file_meta.TransferSyntaxUID == BUNDLED[name]
    assert_transcodes(source, target, tmp_path)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", list(BUNDLED))
def test_bundled_files_written_back_in_their_own_syntax(name: str, tmp_path: Path) -> None:
    """What the redaction stage does: decode as RGB, black out a corner, write back."""
    ds = dcmread(bundled(name, tmp_path))
    original_syntax = ds.file_meta.TransferSyntaxUID
    original_photometric = ds.PhotometricInterpretation
    pixels = decode_pixels(ds)
    corner = (..., slice(0, ds.Rows // 2), slice(0, ds.Columns // 2))
    if ds.SamplesPerPixel == 3:
        corner += (slice(None),)
    pixels[corner] = 0 if ds.PixelRepresentation == 0 else -(2 ** (ds.BitsStored - 1))
    note = write_pixels_back(ds, pixels, original_syntax)

    read = dcmread(save(ds, tmp_path / "out.dcm"))
    syntax = read.file_meta.TransferSyntaxUID
    if syntax != original_syntax:
        assert original_syntax in (uid.ExplicitVRBigEndian, uid.JPEGExtended12Bit) or (
            original_syntax == uid.RLELossless and ds.BitsAllocated == 32)
        assert note and "cannot hold" in note
    assert_same_image(pixels, decode_pixels(read), syntax)
    if original_photometric in ("YBR_FULL", "YBR_FULL_422", "RGB", "YBR_RCT"):
        # 4:2:2 JPEG has no native form; the rest keep their interpretation.
        assert read.PhotometricInterpretation == original_photometric or (
            original_photometric == "YBR_FULL_422" and not syntax.is_compressed)
    if original_syntax in LOSSY_SYNTAXES:
        assert read.LossyImageCompression == "01"


@pytest.mark.parametrize("target", [uid.JPEG2000, uid.HTJ2K, uid.JPEGLSNearLossless],
                         ids=lambda s: uid.UID(s).keyword)
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_lossy_targets_hold_for_images_using_part_of_the_stored_range(
    name: str, target: str, tmp_path: Path
) -> None:
    """Both use 12 of 16 stored bits: a target set against the stored range would be ~30 dB
    too low for them."""
    source = bundled(name, tmp_path)
    assert_transcodes(source, target, tmp_path)


def test_odd_sizes_and_single_pixel_rows(tmp_path: Path) -> None:
    for rows, columns in [(1, 1), (1, 257), (255, 3)]:
        source = source_file(tmp_path, DESCRIPTIONS["mono2-s12"], uid.ExplicitVRLittleEndian,
                             rows=rows, columns=columns)
        for target in (uid.JPEG2000Lossless, uid.HTJ2KLossless, uid.JPEGLSLossless,
                       uid.RLELossless, uid.JPEGLosslessSV1):
            assert_transcodes(source, target, tmp_path)


def test_fallback_rule_jpeg_baseline_for_16_bit_ct(tmp_path: Path) -> None:
    ds = dcmread(bundled("CT_small.dcm", tmp_path))
    syntax, note = choose_output_syntax(ds, uid.JPEGBaseline8Bit)
    assert syntax == uid.JPEGLosslessSV1  # the same family's lossless syntax comes first
    assert note == (
        "JPEG Baseline (Process 1) cannot hold this image (JPEG Baseline holds 8-bit unsigned "
        "samples only); wrote JPEG Lossless, Non-Hierarchical, First-Order Prediction "
        "(Process 14 [Selection Value 1])"
    )


@pytest.mark.parametrize(
    ("description", "requested", "expected"),
    [
        # JPEG-LS Near-Lossless refuses signed samples; JPEG-LS Lossless takes them.
        (DESCRIPTIONS["mono2-s12"], uid.JPEGLSNearLossless, uid.JPEGLSLossless),
        # Lossy syntaxes refuse palette indices; the family's lossless syntax takes them.
        (DESCRIPTIONS["palette-u8"], uid.HTJ2K, uid.HTJ2KLossless),
        # Lossy HTJ2K refuses 12 bits in 16 (its codestream declares 16: overshoot would
        # decode beyond Bits Stored); its lossless form is exact.
        (DESCRIPTIONS["mono2-s12"], uid.HTJ2K, uid.HTJ2KLossless),
        (DESCRIPTIONS["palette-u8"], uid.JPEGBaseline8Bit, uid.JPEGLosslessSV1),
        # RLE and the JPEG family stop at 16 bits; JPEG 2000 Lossless holds up to 24.
        (PixelDescription("MONOCHROME2", 32, 20), uid.RLELossless, uid.JPEG2000Lossless),
        (PixelDescription("MONOCHROME2", 32, 32), uid.JPEGLSLossless,
         uid.ExplicitVRLittleEndian),
        # RLE cannot hold 4-bit samples in 16-bit containers (pydicom decodes them wrongly).
        (PixelDescription("MONOCHROME2", 16, 4), uid.RLELossless, uid.JPEG2000Lossless),
    ],
)
def test_fallback_order(description: PixelDescription, requested: str, expected: str) -> None:
    ds, _ = make_image(description)
    syntax, note = choose_output_syntax(ds, requested)
    assert syntax == expected
    assert note and f"wrote {uid.UID(expected).name}" in note


def test_nothing_holds_one_bit_pixels(tmp_path: Path) -> None:
    ds = dcmread(get_testdata_file("liver_1frame.dcm"))
    with pytest.raises(CodecError, match="no writable transfer syntax holds this image"):
        choose_output_syntax(ds, uid.JPEG2000Lossless)


@pytest.mark.parametrize(
    ("lossy", "lossless"),
    [
        (uid.JPEGBaseline8Bit, uid.JPEGLosslessSV1),
        (uid.JPEGExtended12Bit, uid.JPEGLosslessSV1),
        (uid.JPEGLSNearLossless, uid.JPEGLSLossless),
        (uid.JPEG2000, uid.JPEG2000Lossless),
        (uid.HTJ2K, uid.HTJ2KLossless),
    ],
)
def test_lossless_policy_picks_the_family_lossless_syntax(lossy: str, lossless: str) -> None:
    ds, _ = make_image(DESCRIPTIONS["mono2-u8"])
    assert choose_output_syntax(ds, lossy, "same")[0] == (
        lossy if lossy != uid.JPEGExtended12Bit else lossless)
    syntax, note = choose_output_syntax(ds, lossy, "lossless")
    assert syntax == lossless
    assert note.startswith(f"lossless policy: {uid.UID(lossless).name} instead of")
    assert choose_output_syntax(ds, lossless, "lossless") == (lossless, None)


def test_lossy_input_written_back_lossless_records_its_history(tmp_path: Path) -> None:
    ds, pixels = make_image(DESCRIPTIONS["ybr_full-u8"], rows=64, columns=64)
    encode_pixels(ds, pixels, uid.JPEGBaseline8Bit)  # YBR_FULL_422
    for keyword in ("LossyImageCompression", "LossyImageCompressionRatio",
                    "LossyImageCompressionMethod"):
        del ds[keyword]  # as some writers leave it
    ds = dcmread(save(ds, tmp_path / "in.dcm"))
    compressed_bytes = len(ds.PixelData)
    pixels = decode_pixels(ds, as_rgb=False)
    pixels[:10] = (0, 128, 128)  # black in YBR_FULL
    note = write_pixels_back(ds, pixels, uid.JPEGBaseline8Bit, "lossless", as_rgb=False)

    read = dcmread(save(ds, tmp_path / "out.dcm"))
    assert read.file_meta.TransferSyntaxUID == uid.JPEGLosslessSV1
    assert note.startswith("lossless policy")
    np.testing.assert_array_equal(decode_pixels(read, as_rgb=False), pixels)
    assert read.LossyImageCompression == "01"
    assert read.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(read.LossyImageCompressionRatio) == pytest.approx(
        64 * 64 * 3 / compressed_bytes, rel=0.01)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_lossy_input_written_back_lossy_is_a_new_generation(tmp_path: Path) -> None:
    ds = dcmread(bundled("SC_rgb_dcmtk_+eb+cy+np.dcm", tmp_path))
    pixels = decode_pixels(ds)
    pixels[:10] = 0
    assert write_pixels_back(ds, pixels, uid.JPEGBaseline8Bit) is None

    read = dcmread(save(ds, tmp_path / "out.dcm"))
    assert read.file_meta.TransferSyntaxUID == uid.JPEGBaseline8Bit
    assert read.PhotometricInterpretation == "YBR_FULL_422"
    assert list(read.LossyImageCompressionMethod) == ["ISO_10918_1", "ISO_10918_1"]
    assert len(read.LossyImageCompressionRatio) == 2
    assert psnr_db(pixels, decode_pixels(read)) >= LOSSY_PSNR_FLOOR_DB


@pytest.mark.parametrize(
    ("name", "syntax", "photometric"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", uid.JPEGBaseline8Bit, "YBR_FULL"),  # stays 4:4:4
        ("SC_rgb_dcmtk_+eb+cr.dcm", uid.JPEGBaseline8Bit, "RGB"),  # no colour transform
        ("SC_rgb_gdcm_KY.dcm", uid.JPEG2000, "RGB"),  # no multi-component transform
        ("GDCMJ2K_TextGBR.dcm", uid.JPEG2000Lossless, "YBR_RCT"),
        ("GDCMJ2K_TextGBR.dcm", uid.HTJ2KLossless, "YBR_RCT"),
        ("GDCMJ2K_TextGBR.dcm", uid.RLELossless, "RGB"),  # RLE codes no YBR_RCT
        ("SC_rgb_jpeg_dcmtk.dcm", uid.RLELossless, "YBR_FULL"),
        ("SC_rgb_rle.dcm", uid.JPEG2000Lossless, "RGB"),
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_photometric_interpretation_is_kept_where_the_syntax_can_code_it(
    name: str, syntax: str, photometric: str, tmp_path: Path
) -> None:
    destination = tmp_path / "out.dcm"
    outcome = transcode_file(bundled(name, tmp_path), destination, syntax)
    assert dcmread(destination).PhotometricInterpretation == photometric
    assert (outcome.note is None) == (photometric == dcmread(get_testdata_file(name))
                                      .PhotometricInterpretation)


def test_lossy_conversion_derives_a_new_uid_deterministically(tmp_path: Path) -> None:
    source = source_file(tmp_path, DESCRIPTIONS["mono2-u8"], uid.ExplicitVRLittleEndian)
    uids = set()
    for run in range(2):
        transcode_file(source, tmp_path / f"j2k{run}.dcm", "j2k")
        uids.add(dcmread(tmp_path / f"j2k{run}.dcm").SOPInstanceUID)
    transcode_file(source, tmp_path / "jpeg.dcm", "jpeg-baseline")
    jpeg_uid = dcmread(tmp_path / "jpeg.dcm").SOPInstanceUID
    assert len(uids) == 1 and jpeg_uid not in uids
    assert dcmread(source).SOPInstanceUID not in uids | {jpeg_uid}


def test_same_syntax_is_copied_byte_for_byte(tmp_path: Path) -> None:
    source = source_file(tmp_path, DESCRIPTIONS["rgb-u8"], uid.JPEGLSLossless)
    outcome = transcode_file(source, tmp_path / "out.dcm", uid.JPEGLSLossless)
    assert outcome.action == "copied" and outcome.note is None
    assert filecmp.cmp(source, tmp_path / "out.dcm", shallow=False)


def test_resolve_syntax() -> None:
    assert set(SYNTAX_NAMES.values()) == ENCODABLE_SYNTAXES
    assert resolve_syntax("J2K-Lossless") == uid.JPEG2000Lossless
    assert resolve_syntax(uid.HTJ2KLosslessRPCL) == uid.HTJ2KLosslessRPCL
    for unwritable in ("jpeg2000", uid.ExplicitVRBigEndian, uid.JPEGExtended12Bit):
        with pytest.raises(ValueError, match="unknown or unwritable"):
            resolve_syntax(unwritable)


def test_decode_pixels_returns_rgb_or_stored_colour() -> None:
    ds = dcmread(get_testdata_file("SC_rgb_dcmtk_+eb+cy+np.dcm"))  # YBR_FULL_422 of pure red
    assert decode_pixels(ds)[0, 0].tolist() == [254, 0, 0]
    assert decode_pixels(ds, as_rgb=False)[0, 0].tolist() == [76, 85, 255]
    assert decode_pixels(dcmread(get_testdata_file("CT_small.dcm"))).flags.writeable


# Corrupt and truncated inputs: each one goes to quarantine with the codec's reason.


def corrupt_frame(path: Path, damage) -> Path:
    ds = dcmread(path)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    damaged = damage(frame)
    ds.PixelData = encapsulate([damaged + b"\0" * (len(damaged) % 2)])
    return save(ds, path)


def corrupt_tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    description = DESCRIPTIONS["mono2-s12"]

    def encoded(name: str, syntax: str) -> Path:
        ds, pixels = make_image(description, rows=128, columns=128)
        encode_pixels(ds, pixels, syntax)
        return save(ds, root / name)

    encoded("good.dcm", uid.ExplicitVRLittleEndian)
    corrupt_frame(encoded("half_jpegls.dcm", uid.JPEGLSLossless), lambda f: f[: len(f) // 2])
    corrupt_frame(encoded("zero_tail_j2k.dcm", uid.JPEG2000Lossless),
                  lambda f: f[: len(f) // 2] + bytes(len(f) - len(f) // 2))
    corrupt_frame(encoded("bad_header_htj2k.dcm", uid.HTJ2KLossless),
                  lambda f: f[:2] + bytes(range(256)) + f[258:])
    corrupt_frame(encoded("half_rle.dcm", uid.RLELossless), lambda f: f[: len(f) // 2])
    for name, syntax in [("cut_in_pixel_data.dcm", uid.JPEGLSLossless),
                         ("short_native.dcm", uid.ExplicitVRLittleEndian)]:
        path = encoded(name, syntax)
        path.write_bytes(path.read_bytes()[: -len(dcmread(path).PixelData) // 2])
    # Cut inside Bits Stored, well before the Pixel Data.
    path = encoded("cut_in_pixel_module.dcm", uid.ExplicitVRLittleEndian)
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\x28\x00\x01\x01") + 9])
    shutil.copy(get_testdata_file("JPEG-lossy.dcm"), root / "JPEG-lossy.dcm")
    (root / "notes.bin").write_bytes(b"not DICOM at all")
    return root


REASONS = {
    "half_jpegls.dcm": "truncated codestream: frame 1 of 1 has no end marker",
    "zero_tail_j2k.dcm": "truncated codestream: frame 1 of 1 has no end marker",
    "bad_header_htj2k.dcm": "No matching JPEG 2000 format found",
    "half_rle.dcm": "The end of the data was reached before the segment was completely decoded",
    "cut_in_pixel_data.dcm": "image without Pixel Data: the file is truncated",
    "cut_in_pixel_module.dcm": "image without Pixel Data: the file is truncated",
    "short_native.dcm": "number of bytes of pixel data is less than expected",
    # A real-world JPEG Extended file that pydicom's backends here cannot read (GDCM can).
    "JPEG-lossy.dcm": "scan start must be zero and scan stop must be 63",
    "notes.bin": "not a DICOM file",
}


def test_corrupt_inputs_go_to_quarantine_and_the_batch_completes(tmp_path: Path) -> None:
    src = corrupt_tree(tmp_path)
    before = {p: p.read_bytes() for p in src.iterdir()}
    report = transcode_tree(src, tmp_path / "out", "j2k-lossless", tmp_path / "quarantine")

    assert (report.transcoded, report.copied, report.quarantined) == (1, 0, len(REASONS))
    assert (tmp_path / "out" / "good.dcm").is_file()
    for name, reason in REASONS.items():
        assert not (tmp_path / "out" / name).exists()
        assert (tmp_path / "quarantine" / name).read_bytes() == before[src / name]
        recorded = (tmp_path / "quarantine" / f"{name}.reason.txt").read_text()
        assert recorded.startswith(f"{name}\t") and reason in recorded, recorded
        assert "\n" not in recorded.rstrip("\n")
    assert {p: p.read_bytes() for p in src.iterdir()} == before  # inputs only read


def test_decode_pixels_raises_codec_error_with_the_reason(tmp_path: Path) -> None:
    src = corrupt_tree(tmp_path)
    with pytest.raises(CodecError, match="No matching JPEG 2000 format found"):
        decode_pixels(dcmread(src / "bad_header_htj2k.dcm"))
    ds = dcmread(io.BytesIO((src / "half_jpegls.dcm").read_bytes()))
    with pytest.raises(CodecError, match="no end marker"):
        decode_pixels(ds)
