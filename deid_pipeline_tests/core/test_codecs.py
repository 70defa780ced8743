"""encode_pixels round trips through a real file: encode, write, read back, decode, compare.

Lossless syntaxes must give the pixels back bit for bit; lossy ones at least LOSSY_PSNR_FLOOR_DB,
measured against the full stored range.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import pytest
from pydicom import dcmread, uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames, parse_basic_offsets

from deid_pipeline.core.codecs import ENCODABLE_SYNTAXES, encodable, encode_pixels

LOSSY_PSNR_FLOOR_DB = 40
LOSSY = {
    uid.JPEGBaseline8Bit: "ISO_10918_1",
    uid.JPEGLSNearLossless: "ISO_14495_1",
    uid.JPEG2000: "ISO_15444_1",
    uid.HTJ2K: "ISO_15444_15",
}
NATIVE = {
    uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian
}
SYNTAXES = sorted(ENCODABLE_SYNTAXES)
# What RGB input becomes; every other input keeps its Photometric Interpretation, except colour
# in JPEG Baseline, which is always YBR_FULL_422.
RGB_CODED_AS = {
    uid.JPEGBaseline8Bit: "YBR_FULL_422",
    uid.JPEG2000Lossless: "YBR_RCT",
    uid.JPEG2000: "YBR_ICT",
    uid.HTJ2KLossless: "YBR_RCT",
    uid.HTJ2KLosslessRPCL: "YBR_RCT",
    uid.HTJ2K: "YBR_ICT",
}


@dataclass(frozen=True)
class PixelDescription:
    photometric: str
    bits_allocated: int
    bits_stored: int
    signed: bool = False

    @property
    def samples(self) -> int:
        return 3 if self.photometric in ("RGB", "YBR_FULL") else 1


DESCRIPTIONS = {
    "mono2-u8": PixelDescription("MONOCHROME2", 8, 8),
    "mono2-s12": PixelDescription("MONOCHROME2", 16, 12, signed=True),
    "mono1-u16": PixelDescription("MONOCHROME1", 16, 16),
    "rgb-u8": PixelDescription("RGB", 8, 8),
    "ybr_full-u8": PixelDescription("YBR_FULL", 8, 8),
    "palette-u8": PixelDescription("PALETTE COLOR", 8, 8),
}
# The pairs of the matrix that encodable must refuse; it must accept all others.
REFUSED = {
    (uid.JPEGBaseline8Bit, "mono2-s12"),
    (uid.JPEGBaseline8Bit, "mono1-u16"),
    (uid.JPEGBaseline8Bit, "palette-u8"),
    (uid.JPEGLSNearLossless, "mono2-s12"),
    (uid.JPEGLSNearLossless, "palette-u8"),
    (uid.JPEG2000, "palette-u8"),
    (uid.HTJ2K, "palette-u8"),
    (uid.HTJ2K, "mono2-s12"),  # lossy overshoot would decode beyond Bits Stored
}


def make_image(
    description: PixelDescription, rows: int = 64, columns: int = 80, frames: int = 1
) -> tuple[Dataset, np.ndarray]:
    """A Secondary Capture dataset describing native pixels, and the pixels: smooth gradients
    with one-step noise across the stored range, different in every frame and sample."""
    ds = Dataset()
    ds.SOPClassUID = uid.SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = description.samples
    ds.PhotometricInterpretation = description.photometric
    ds.BitsAllocated = description.bits_allocated
    ds.BitsStored = description.bits_stored
    ds.HighBit = description.bits_stored - 1
    ds.PixelRepresentation = int(description.signed)
    if description.samples == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if description.photometric == "PALETTE COLOR":
        entries = 2**description.bits_stored
        for colour, scale in (("Red", 257), ("Green", 128), ("Blue", 64)):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [entries, 0, 16])
            lut = (np.arange(entries) * scale % 65536).astype("<u2")
            setattr(ds, f"{colour}PaletteColorLookupTableData", lut.tobytes())

    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:rows, 0:columns]
    planes = [
        (np.sin(x / (9 + 3 * plane + frame) + frame) + np.cos(y / (7 + 2 * plane)) + 2) / 4
        for frame in range(frames)
        for plane in range(description.samples)
    ]
    unit = np.stack(planes).reshape(frames, description.samples, rows, columns)
    unit = unit.transpose(0, 2, 3, 1)
    levels = 2**description.bits_stored - 1
    values = np.clip(np.round(unit * levels + rng.normal(0, 1, unit.shape)), 0, levels)
    if description.signed:
        values -= 2 ** (description.bits_stored - 1)
    kind = "i" if description.signed else "u"
    pixels = values.astype(f"{kind}{description.bits_allocated // 8}")
    shape = ((frames,) if frames > 1 else ()) + (rows, columns)
    shape += (description.samples,) if description.samples > 1 else ()
    return ds, pixels.reshape(shape)


def write_and_read(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return dcmread(io.BytesIO(buffer.getvalue()))


def decoded(ds: Dataset, photometric: str) -> np.ndarray:
    # pydicom converts YBR data to RGB by default; YBR_FULL input is compared as YBR_FULL.
    ds.pixel_array_options(as_rgb=photometric != "YBR_FULL")
    return ds.pixel_array


def psnr_db(original: np.ndarray, reconstructed: np.ndarray, bits_stored: int) -> float:
    error = np.mean((original.astype(np.float64) - reconstructed.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10((2**bits_stored - 1) ** 2 / error)


def assert_round_trip(
    description: PixelDescription,
    transfer_syntax: str,
    rows: int = 64,
    columns: int = 80,
    frames: int = 1,
) -> Dataset:
    ds, pixels = make_image(description, rows, columns, frames)
    encode_pixels(ds, pixels, transfer_syntax)
    read = write_and_read(ds)

    assert read.file_meta.TransferSyntaxUID == transfer_syntax
    got = decoded(read, description.photometric)
    assert got.shape == pixels.shape
    if transfer_syntax in LOSSY:
        psnr = psnr_db(pixels, got, description.bits_stored)
        assert psnr >= LOSSY_PSNR_FLOOR_DB, f"PSNR {psnr:.1f} dB"
        assert read.LossyImageCompression == "01"
        assert read.LossyImageCompressionMethod == LOSSY[transfer_syntax]
        assert float(read.LossyImageCompressionRatio) > 1
    else:
        np.testing.assert_array_equal(got, pixels)
        assert "LossyImageCompression" not in read

    expected_photometric = description.photometric
    if description.photometric == "RGB":
        expected_photometric = RGB_CODED_AS.get(transfer_syntax, "RGB")
    elif description.samples == 3 and transfer_syntax == uid.JPEGBaseline8Bit:
        expected_photometric = "YBR_FULL_422"
    assert read.PhotometricInterpretation == expected_photometric
    if transfer_syntax not in NATIVE:
        assert read["PixelData"].VR == "OB"
        assert read["PixelData"].is_undefined_length
        assert len(list(generate_frames(read.PixelData, number_of_frames=frames))) == frames
        assert len(parse_basic_offsets(read.PixelData)) == frames
    return read


MATRIX = [
    pytest.param(syntax, name, id=f"{uid.UID(syntax).keyword}-{name}")
    for syntax in SYNTAXES
    for name in DESCRIPTIONS
    if (syntax, name) not in REFUSED
]


@pytest.mark.parametrize(("transfer_syntax", "description_name"), MATRIX)
def test_round_trip(transfer_syntax: str, description_name: str) -> None:
    assert_round_trip(DESCRIPTIONS[description_name], transfer_syntax)


def test_encodable_refuses_exactly_the_expected_pairs() -> None:
    refused = {
        (syntax, name)
        for syntax in SYNTAXES
        for name, description in DESCRIPTIONS.items()
        if encodable(make_image(description)[0], syntax) is not None
    }
    assert refused == REFUSED


@pytest.mark.parametrize("transfer_syntax", SYNTAXES, ids=lambda s: uid.UID(s).keyword)
def test_multi_frame_encodes_every_frame_with_an_offset_table(transfer_syntax: str) -> None:
    read = assert_round_trip(DESCRIPTIONS["rgb-u8"], transfer_syntax, frames=3)
    if transfer_syntax not in NATIVE:
        offsets = parse_basic_offsets(read.PixelData)
        assert offsets[0] == 0 and offsets == sorted(set(offsets))


@pytest.mark.parametrize("transfer_syntax", SYNTAXES, ids=lambda s: uid.UID(s).keyword)
def test_odd_size(transfer_syntax: str) -> None:
    assert_round_trip(DESCRIPTIONS["mono2-u8"], transfer_syntax, rows=301, columns=257)


@pytest.mark.parametrize("transfer_syntax", SYNTAXES, ids=lambda s: uid.UID(s).keyword)
def test_deterministic(transfer_syntax: str) -> None:
    encodings = []
    for _ in range(2):
        ds, pixels = make_image(DESCRIPTIONS["rgb-u8"], frames=2)
        encode_pixels(ds, pixels, transfer_syntax)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        encodings.append(buffer.getvalue())
    assert encodings[0] == encodings[1]


def test_jpeg_baseline_refuses_16_bit() -> None:
    ds, pixels = make_image(DESCRIPTIONS["mono1-u16"])
    reason = encodable(ds, uid.JPEGBaseline8Bit)
    assert reason == "JPEG Baseline holds 8-bit unsigned samples only"
    with pytest.raises(ValueError, match="8-bit"):
        encode_pixels(ds, pixels, uid.JPEGBaseline8Bit)


def test_encodable_refuses_unknown_syntax_and_subsampled_input() -> None:
    ds, _ = make_image(DESCRIPTIONS["rgb-u8"])
    assert encodable(ds, uid.MPEG2MPML) is not None
    ds.PhotometricInterpretation = "YBR_FULL_422"
    assert encodable(ds, uid.ExplicitVRLittleEndian) is not None


def test_rejects_pixels_that_do_not_match_the_description() -> None:
    ds, pixels = make_image(DESCRIPTIONS["mono2-s12"])
    with pytest.raises(ValueError, match="shape"):
        encode_pixels(ds, pixels[:-1], uid.ExplicitVRLittleEndian)
    with pytest.raises(ValueError, match="outside"):
        encode_pixels(ds, pixels * 2, uid.ExplicitVRLittleEndian)


@pytest.mark.parametrize(
    ("transfer_syntax", "bits_allocated", "vr"),
    [
        (uid.ImplicitVRLittleEndian, 8, "OW"),
        (uid.ExplicitVRLittleEndian, 8, "OB"),
        (uid.ExplicitVRLittleEndian, 16, "OW"),
    ],
)
def test_native_pixel_data_vr(transfer_syntax: str, bits_allocated: int, vr: str) -> None:
    ds, pixels = make_image(PixelDescription("MONOCHROME2", bits_allocated, 8))
    encode_pixels(ds, pixels, transfer_syntax)
    assert ds["PixelData"].VR == vr
    assert not ds["PixelData"].is_undefined_length


def test_native_keeps_planar_configuration_and_compressed_sets_zero() -> None:
    ds, pixels = make_image(DESCRIPTIONS["rgb-u8"])
    ds.PlanarConfiguration = 1
    encode_pixels(ds, pixels, uid.ExplicitVRLittleEndian)
    read = write_and_read(ds)
    assert read.PlanarConfiguration == 1
    np.testing.assert_array_equal(read.pixel_array, pixels)

    encode_pixels(ds, pixels, uid.JPEGLSLossless)
    read = write_and_read(ds)
    assert read.PlanarConfiguration == 0
    np.testing.assert_array_equal(read.pixel_array, pixels)


def test_reencoding_compressed_pixels_drops_the_stale_extended_offset_table() -> None:
    ds, pixels = make_image(DESCRIPTIONS["mono2-u8"])
    ds.ExtendedOffsetTable = struct.pack("<Q", 0)
    ds.ExtendedOffsetTableLengths = struct.pack("<Q", 100)
    encode_pixels(ds, pixels, uid.JPEG2000Lossless)
    assert "ExtendedOffsetTable" not in ds and "ExtendedOffsetTableLengths" not in ds


def test_lossy_attributes_append_to_earlier_compression() -> None:
    ds, pixels = make_image(DESCRIPTIONS["mono2-u8"])
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = "8"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    encode_pixels(ds, pixels, uid.JPEG2000)
    read = write_and_read(ds)
    assert list(read.LossyImageCompressionMethod) == ["ISO_10918_1", "ISO_15444_1"]
    assert len(read.LossyImageCompressionRatio) == 2
    assert float(read.LossyImageCompressionRatio[0]) == 8


def test_htj2k_rpcl_codestream_meets_the_transfer_syntax() -> None:
    # 4500 columns need 7 decompositions for a base resolution of at most 64 pixels.
    ds, pixels = make_image(DESCRIPTIONS["mono2-s12"], rows=8, columns=4500)
    encode_pixels(ds, pixels, uid.HTJ2KLosslessRPCL)
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    main_header = codestream[: codestream.index(b"\xff\x90")]  # up to the first tile-part
    cod = main_header.index(b"\xff\x52")
    progression_order, decompositions = codestream[cod + 5], codestream[cod + 9]
    assert progression_order == 2  # RPCL in ISO 15444-1 Table A.16
    assert decompositions == 7
    assert b"\xff\x55" in main_header  # TLM
    np.testing.assert_array_equal(write_and_read(ds).pixel_array, pixels)


@pytest.mark.parametrize("transfer_syntax", SYNTAXES, ids=lambda s: uid.UID(s).keyword)
def test_colour_is_declared_by_plane_in_rle_and_by_pixel_in_other_codestreams(
        transfer_syntax: str) -> None:
    read = assert_round_trip(DESCRIPTIONS["rgb-u8"], transfer_syntax)
    if transfer_syntax not in NATIVE:
        assert read.PlanarConfiguration == (1 if transfer_syntax == uid.RLELossless else 0)


def test_lossy_jpeg_2000_keeps_faint_text_on_a_mostly_flat_frame() -> None:
    # A CT-like frame, mostly air, with a banner 60 levels over it in one-pixel strokes: the
    # PSNR target alone is met at over 100:1, which wipes the strokes out.
    import cv2

    ds, _ = make_image(PixelDescription("MONOCHROME2", 16, 12), rows=256, columns=256)
    rng = np.random.default_rng(3)
    pixels = np.full((256, 256), 24.0) + rng.normal(0, 1, (256, 256))
    body = np.zeros((256, 256), np.uint8)
    cv2.circle(body, (128, 150), 90, 1, -1)
    pixels += cv2.GaussianBlur(body.astype(float), (0, 0), 3) * 1000
    strokes = np.zeros((256, 256), np.uint8)
    cv2.putText(strokes, "DOE JANE 19860315", (4, 14), cv2.FONT_HERSHEY_PLAIN, 0.8, 1, 1)
    pixels[strokes > 0] += 60
    pixels = np.clip(np.round(pixels), 0, 4095).astype(np.uint16)
    encode_pixels(ds, pixels, uid.JPEG2000)
    got = write_and_read(ds).pixel_array.astype(float)
    error = np.abs(got - pixels)[strokes > 0]
    assert float(np.median(error)) < 15, "the banner's strokes were smoothed away"
    assert float(ds.LossyImageCompressionRatio) < 25
