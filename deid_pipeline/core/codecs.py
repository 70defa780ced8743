"""Write native pixel arrays into a dataset in a chosen transfer syntax.

The synthetic-corpus generator uses this to produce every syntax the pipeline must read, and the
redaction stage uses it to write redacted pixels back in the input's own syntax.

Encoders: pydicom's own where it has one (RLE through pylibjpeg-rle, JPEG-LS through pyjpegls,
JPEG 2000 through pylibjpeg-openjpeg); imagecodecs (libjpeg-turbo, OpenJPH) for JPEG Baseline,
JPEG Lossless SV1 and HTJ2K, which pydicom cannot encode.

Photometric rule: colour is written as given (RGB or YBR_FULL) except where the syntax transforms
it. JPEG Baseline converts RGB to YCbCr with 4:2:2 chroma subsampling (YBR_FULL_422); JPEG 2000
and HTJ2K apply the multi-component transform to RGB (YBR_RCT when reversible, YBR_ICT when
irreversible), the usual way to get good colour compression. YBR_FULL input is never transformed.
Compressed syntaxes always write Planar Configuration 0; native syntaxes keep the dataset's value.
"""

from __future__ import annotations

import math

import imagecodecs
import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.multival import MultiValue
from pydicom.pixels import get_encoder
from pydicom.pixels.utils import as_pixel_options
from pydicom.valuerep import VR

JPEG_BASELINE_QUALITY = 90  # libjpeg quality scale; near-transparent for 8-bit images
JPEG_LS_NEAR_LOSSLESS_ERROR = 2  # largest absolute difference per sample (NEAR)
J2K_COMPRESSION_RATIO = 10  # one quality layer at 10:1
# OpenJPH's irreversible base step, as a fraction of the stored sample range. imagecodecs codes
# samples at their container precision (8 or 16 bits), so the step is rescaled to Bits Stored.
HTJ2K_QUANTIZATION_STEP = 1 / 512
HTJ2K_DEFAULT_DECOMPOSITIONS = 5  # OpenJPH's default
# PS3.5 10.18: an RPCL stream has enough decompositions for a base resolution of <= 64 pixels.
RPCL_THUMBNAIL_SIZE = 64

NATIVE_SYNTAXES = frozenset(
    {uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian}
)
# pydicom plugin and the options it needs for each syntax it encodes.
PYDICOM_ENCODED: dict[str, tuple[str, dict[str, object]]] = {
    uid.RLELossless: ("pylibjpeg", {}),  # pylibjpeg-rle: ~10x faster than pydicom's own RLE
    uid.JPEGLSLossless: ("pyjpegls", {}),
    uid.JPEGLSNearLossless: ("pyjpegls", {"jls_error": JPEG_LS_NEAR_LOSSLESS_ERROR}),
    uid.JPEG2000Lossless: ("pylibjpeg", {}),
    uid.JPEG2000: ("pylibjpeg", {"j2k_cr": [J2K_COMPRESSION_RATIO]}),
}
HTJ2K_SYNTAXES = frozenset({uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K})
ENCODABLE_SYNTAXES: frozenset[str] = (
    NATIVE_SYNTAXES
    | PYDICOM_ENCODED.keys()
    | HTJ2K_SYNTAXES
    | {uid.JPEGBaseline8Bit, uid.JPEGLosslessSV1}
)
# PS3.3 C.7.6.1.1.5: Lossy Image Compression Method of each lossy syntax.
LOSSY_METHODS = {
    uid.JPEGBaseline8Bit: "ISO_10918_1",
    uid.JPEGLSNearLossless: "ISO_14495_1",
    uid.JPEG2000: "ISO_15444_1",
    uid.HTJ2K: "ISO_15444_15",
}
MCT_SYNTAXES = frozenset({uid.JPEG2000Lossless, uid.JPEG2000} | HTJ2K_SYNTAXES)
# Interpretations `encode_pixels` accepts; pixel_array returns RGB for the YBR_*_422, YBR_RCT and
# YBR_ICT data it decodes, so callers describe such pixels as RGB.
INPUT_PHOTOMETRICS = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL"})


def encodable(ds: Dataset, transfer_syntax: str) -> str | None:
    """None when `encode_pixels` can write ds's pixel description in that syntax, else a short
    reason."""
    if transfer_syntax not in ENCODABLE_SYNTAXES:
        return f"no encoder for transfer syntax {transfer_syntax}"
    name = uid.UID(transfer_syntax).name
    photometric = ds.get("PhotometricInterpretation")
    samples = ds.get("SamplesPerPixel")
    bits_allocated = ds.get("BitsAllocated")
    bits_stored = ds.get("BitsStored")
    signed = ds.get("PixelRepresentation") == 1
    if photometric not in INPUT_PHOTOMETRICS:
        return f"input Photometric Interpretation {photometric} is not supported"
    if samples != (1 if photometric in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR") else 3):
        return f"{photometric} needs {1 if samples == 3 else 3} samples per pixel, not {samples}"
    if bits_allocated not in (8, 16, 32):
        return f"Bits Allocated {bits_allocated} is not 8, 16 or 32"
    if bits_stored is None or not 1 <= bits_stored <= bits_allocated:
        return f"Bits Stored {bits_stored} does not fit Bits Allocated {bits_allocated}"
    if samples == 3 and signed:
        return "colour samples must be unsigned"
    if transfer_syntax in NATIVE_SYNTAXES:
        return None
    if photometric == "PALETTE COLOR" and transfer_syntax in LOSSY_METHODS:
        return f"{name} is lossy and would corrupt PALETTE COLOR indices"
    if bits_stored > 16:
        return f"{name} holds at most 16-bit samples"
    if transfer_syntax == uid.JPEGBaseline8Bit:
        if bits_stored != 8 or signed:
            return "JPEG Baseline holds 8-bit unsigned samples only"
    elif transfer_syntax in (uid.JPEGLSLossless, uid.JPEGLSNearLossless):
        if bits_stored < 2:
            return "JPEG-LS needs at least 2 bits per sample"
        if photometric == "YBR_FULL" and bits_stored > 8:
            return "JPEG-LS holds YBR_FULL at 8 bits per sample only"
    elif transfer_syntax == uid.JPEGLosslessSV1:
        if bits_stored < 2:
            return "JPEG Lossless needs at least 2 bits per sample"
    elif transfer_syntax == uid.RLELossless:
        if photometric == "YBR_FULL" and bits_stored > 8:
            return "RLE holds YBR_FULL at 8 bits per sample only"
    return None


def encode_pixels(ds: Dataset, pixels: np.ndarray, transfer_syntax: str) -> None:
    """Store `pixels` as ds.PixelData in `transfer_syntax` (a UID string), in place.

    `pixels` has pixel_array's shape and is described by ds's Image Pixel module as native data.
    Sets the file meta Transfer Syntax UID and whatever the syntax requires of the pixel
    description (Photometric Interpretation, Planar Configuration, the lossy compression
    attributes). Raises ValueError when `encodable` refuses, or when `pixels` does not match
    ds's description.
    """
    reason = encodable(ds, transfer_syntax)
    if reason is not None:
        raise ValueError(reason)
    frames = _as_frames(ds, pixels)
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        ds.pop(keyword, None)  # they would index the previous Pixel Data
    if transfer_syntax in NATIVE_SYNTAXES:
        _store_native(ds, frames, transfer_syntax)
    else:
        if ds.SamplesPerPixel == 3:
            ds.PlanarConfiguration = 0
        codestreams = _encode_frames(ds, frames, transfer_syntax)
        ds.PixelData = encapsulate(codestreams)
        ds["PixelData"].VR = VR.OB
        ds["PixelData"].is_undefined_length = True
        if transfer_syntax in LOSSY_METHODS:
            _record_lossy_compression(ds, frames, codestreams, LOSSY_METHODS[transfer_syntax])
    if "file_meta" not in ds:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.UID(transfer_syntax)


def _as_frames(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """`pixels` as (frames, rows, cols, samples) in the container dtype of Bits Allocated."""
    frame_count = int(ds.get("NumberOfFrames") or 1)
    samples = ds.SamplesPerPixel
    expected = (frame_count, ds.Rows, ds.Columns, samples)
    if pixels.shape != _pixel_array_shape(*expected):
        raise ValueError(
            f"pixels shape {pixels.shape} does not match the dataset's "
            f"{_pixel_array_shape(*expected)}"
        )
    if pixels.dtype.kind not in "iu":
        raise ValueError(f"pixels dtype {pixels.dtype} is not an integer type")
    signed = ds.PixelRepresentation == 1
    low, high = (-(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1) if signed else (
        0, 2**ds.BitsStored - 1
    )
    if pixels.size and (pixels.min() < low or pixels.max() > high):
        raise ValueError(f"pixel values fall outside [{low}, {high}] of Bits Stored {ds.BitsStored}")
    container = np.dtype(f"<{'i' if signed else 'u'}{ds.BitsAllocated // 8}")
    return pixels.astype(container, copy=False).reshape(expected)


def _pixel_array_shape(frames: int, rows: int, columns: int, samples: int) -> tuple[int, ...]:
    return (*((frames,) if frames > 1 else ()), rows, columns, *((samples,) if samples > 1 else ()))


def _store_native(ds: Dataset, frames: np.ndarray, transfer_syntax: str) -> None:
    if ds.SamplesPerPixel == 3 and ds.get("PlanarConfiguration") == 1:
        frames = frames.transpose(0, 3, 1, 2)
    data = np.ascontiguousarray(frames).tobytes()
    ds.PixelData = data + b"\0" * (len(data) % 2)  # values have even length
    # PS3.5 A.1: Implicit VR Little Endian Pixel Data is always OW; explicit VR uses OB for
    # 8-bit samples.
    implicit = transfer_syntax == uid.ImplicitVRLittleEndian
    ds["PixelData"].VR = VR.OB if ds.BitsAllocated == 8 and not implicit else VR.OW
    ds["PixelData"].is_undefined_length = False


def _encode_frames(ds: Dataset, frames: np.ndarray, transfer_syntax: str) -> list[bytes]:
    """One codestream per frame; sets the Photometric Interpretation the codestreams imply."""
    coded_photometric = _coded_photometric(ds, transfer_syntax)
    if transfer_syntax in PYDICOM_ENCODED:
        # pylibjpeg-openjpeg applies the multi-component transform when told the output is
        # YBR_RCT / YBR_ICT, so the dataset must say so before encoding.
        ds.PhotometricInterpretation = coded_photometric
        plugin, options = PYDICOM_ENCODED[transfer_syntax]
        pixel_options = as_pixel_options(ds, **options)
        source = frames.reshape(_pixel_array_shape(*frames.shape))
        codestreams = list(
            get_encoder(transfer_syntax).iter_encode(
                source, encoding_plugin=plugin, **pixel_options
            )
        )
    else:
        precise = frames.astype(_precision_dtype(ds), copy=False)
        if ds.PixelRepresentation == 1:
            # libjpeg and OpenJPH code unsigned or native signed samples; lossless JPEG has no
            # sign, so it carries the two's complement bit pattern within Bits Stored.
            if transfer_syntax == uid.JPEGLosslessSV1:
                precise = precise.view(precise.dtype.str.replace("i", "u")) & (
                    2**ds.BitsStored - 1
                )
        encode_frame = _imagecodecs_frame_encoder(ds, transfer_syntax)
        codestreams = [bytes(encode_frame(np.squeeze(frame, axis=-1) if ds.SamplesPerPixel == 1 else frame)) for frame in precise]
        ds.PhotometricInterpretation = coded_photometric
    return codestreams


def _coded_photometric(ds: Dataset, transfer_syntax: str) -> str:
    if ds.PhotometricInterpretation != "RGB":
        return ds.PhotometricInterpretation
    if transfer_syntax == uid.JPEGBaseline8Bit:
        return "YBR_FULL_422"
    if transfer_syntax in MCT_SYNTAXES:
        return "YBR_ICT" if transfer_syntax in LOSSY_METHODS else "YBR_RCT"
    return "RGB"


def _precision_dtype(ds: Dataset) -> np.dtype:
    """The smallest container of Bits Stored: the codecs take the sample precision from it."""
    return np.dtype(f"{'i' if ds.PixelRepresentation == 1 else 'u'}{1 if ds.BitsStored <= 8 else 2}")


def _imagecodecs_frame_encoder(ds: Dataset, transfer_syntax: str):
    colour = {"RGB": "RGB", "YBR_FULL": "YCbCr"}.get(ds.PhotometricInterpretation)
    if transfer_syntax == uid.JPEGBaseline8Bit:
        if colour is None:
            return lambda frame: imagecodecs.jpeg8_encode(frame, level=JPEG_BASELINE_QUALITY)
        return lambda frame: imagecodecs.jpeg8_encode(
            frame,
            level=JPEG_BASELINE_QUALITY,
            colorspace=colour,
            outcolorspace="YCbCr",
            subsampling="422",
        )
    if transfer_syntax == uid.JPEGLosslessSV1:
        return lambda frame: imagecodecs.jpeg8_encode(
            frame,
            lossless=True,
            predictor=1,
            bitspersample=ds.BitsStored,
            colorspace=colour,
            outcolorspace=colour,
        )
    reversible = transfer_syntax not in LOSSY_METHODS
    options: dict[str, object] = {
        "reversible": reversible,
        "rgb": ds.PhotometricInterpretation == "RGB",
        "planar": False,
    }
    if not reversible:
        container_bits = 8 * _precision_dtype(ds).itemsize
        options["level"] = HTJ2K_QUANTIZATION_STEP / 2 ** (container_bits - ds.BitsStored)
    if transfer_syntax == uid.HTJ2KLosslessRPCL:
        # OpenJPH's default progression is RPCL already; the syntax also needs TLM markers and
        # tile-parts at resolution boundaries so a reader can stop after any resolution.
        longest = max(ds.Rows, ds.Columns)
        options["resolutions"] = max(
            HTJ2K_DEFAULT_DECOMPOSITIONS, math.ceil(math.log2(longest / RPCL_THUMBNAIL_SIZE))
        )
        options["tlm"] = True
        options["tilepart"] = imagecodecs.HTJ2K.TILEPART.RESOLUTIONS
    return lambda frame: imagecodecs.htj2k_encode(frame, **options)


def _record_lossy_compression(
    ds: Dataset, frames: np.ndarray, codestreams: list[bytes], method: str
) -> None:
    ratio = frames.size * ds.BitsAllocated / 8 / sum(len(c) for c in codestreams)
    ds.LossyImageCompression = "01"
    _append_value(ds, "LossyImageCompressionRatio", f"{ratio:.2f}")
    _append_value(ds, "LossyImageCompressionMethod", method)


def _append_value(ds: Dataset, keyword: str, value: str) -> None:
    existing = ds.get(keyword)
    if existing is None or existing == "":
        values = []
    elif isinstance(existing, MultiValue):
        values = list(existing)
    else:
        values = [existing]
    setattr(ds, keyword, [*values, value])
