"""Write native pixel arrays into a dataset in a chosen transfer syntax.

The synthetic-corpus generator uses this to produce every syntax the pipeline must read, and the
redaction stage uses it to write redacted pixels back in the input's own syntax.

Encoders: pydicom's own where it has one (RLE through pylibjpeg-rle, JPEG-LS through pyjpegls,
JPEG 2000 through pylibjpeg-openjpeg); imagecodecs (libjpeg-turbo, OpenJPH) for JPEG Baseline,
JPEG Lossless SV1 and HTJ2K, which pydicom cannot encode.

Photometric rule: colour is written as given (RGB or YBR_FULL) except where the syntax transforms
it. JPEG Baseline codes colour as YCbCr with 4:2:2 chroma subsampling (YBR_FULL_422); JPEG 2000
and HTJ2K apply the multi-component transform to RGB (YBR_RCT when reversible, YBR_ICT when
irreversible), the usual way to get good colour compression, and keep YBR_FULL as it is.
Compressed syntaxes write Planar Configuration 0, but RLE 1 (its segments are colour planes);
native syntaxes keep the dataset's value.
A writer that must keep an input's own interpretation can ask for one of the alternatives
`coded_photometrics` lists instead: YBR_FULL (4:4:4) or RGB (no colour transform) for JPEG
Baseline, RGB (no multi-component transform) for JPEG 2000 and HTJ2K.

HTJ2K codestreams declare the container precision (8 or 16 bits) rather than Bits Stored, since
imagecodecs takes the precision from the array dtype; pydicom decodes the lossless ones exactly.
Lossy HTJ2K is refused for samples that do not fill their container (12 bits in 16): its
overshoot would decode beyond Bits Stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import imagecodecs
import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.multival import MultiValue
from pydicom.pixels import get_encoder
from pydicom.pixels.utils import as_pixel_options
from pydicom.valuerep import VR

# Lossy settings aim at "visually lossless" (PSNR of roughly 40-50 dB on 8-bit images), since
# redacted images may be compressed again downstream.
JPEG_BASELINE_QUALITY = 90  # libjpeg scale, with 4:2:2 chroma
JPEG_LS_NEAR_LOSSLESS_ERROR = 2  # NEAR: the largest absolute difference per sample
# One quality layer at a PSNR target rather than a ratio: the same ratio gives ~30 dB on noisy
# colour images and ~75 dB on CT.
J2K_PSNR_DB = 45
# Where that PSNR comes at more than this ratio (of the stored bits), the frame is coded again
# at this ratio: on a frame that is mostly flat (air, a black screen) the PSNR target is met at
# 50-140:1, which wipes out faint text and fine detail alike (a CT banner 60 levels over air, a
# screen capture's dark grey header). 15:1 is the strictest of the Canadian Association of
# Radiologists' JPEG 2000 limits (CT); OpenJPEG's rate control lands within a third of it.
J2K_MAX_RATIO = 15
# OpenJPH has no rate control; this is its irreversible base step as a fraction of the stored
# sample range (44-51 dB on 8-bit test images, 53-60 dB on 12/16-bit ones). imagecodecs codes
# samples at their container precision (8 or 16 bits), so the step is rescaled to Bits Stored.
HTJ2K_QUANTIZATION_STEP = 1 / 128
# Both lossy JPEG 2000 targets hold for the span of the values present rather than the stored
# range: CT and MR often use 11 or 12 of 16 stored bits, and 45 dB of the 16-bit range is a
# 10-14 dB error on such images (pydicom's CT_small.dcm and MR_small.dcm).
HTJ2K_DEFAULT_DECOMPOSITIONS = 5  # OpenJPH's default
# PS3.5 10.18: an RPCL stream has enough decompositions for a base resolution of <= 64 pixels.
RPCL_THUMBNAIL_SIZE = 64
# pylibjpeg-openjpeg always codes 6 resolutions (5 decompositions), which OpenJPEG refuses for
# images with fewer than 2**5 rows or columns.
OPENJPEG_MIN_SIZE = 32
# pyjpegls gives CharLS an output buffer of twice the frame's size, which the JPEG-LS headers
# overflow for frames of up to 48 bytes (found for 1 to 16 bits, 1 and 3 samples).
CHARLS_MIN_FRAME_BYTES = 64

NATIVE_SYNTAXES = frozenset(
    {uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian}
)
# pydicom plugin and the options it needs for each syntax it encodes.
PYDICOM_ENCODED: dict[str, tuple[str, dict[str, object]]] = {
    uid.RLELossless: ("pylibjpeg", {}),
    uid.JPEGLSLossless: ("pyjpegls", {}),
    uid.JPEGLSNearLossless: ("pyjpegls", {"jls_error": JPEG_LS_NEAR_LOSSLESS_ERROR}),
    uid.JPEG2000Lossless: ("pylibjpeg", {}),
    uid.JPEG2000: ("pylibjpeg", {}),  # j2k_psnr: J2K_PSNR_DB, set per image
}
HTJ2K_SYNTAXES = frozenset({uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K})
ENCODABLE_SYNTAXES: frozenset[str] = frozenset(
    {*NATIVE_SYNTAXES, *PYDICOM_ENCODED, *HTJ2K_SYNTAXES, uid.JPEGBaseline8Bit, uid.JPEGLosslessSV1}
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
    reason.

    The limits are those of the encoders and of pydicom's decoders, found by round-tripping
    descriptions of 1 to 24 bits through a file, narrowed by PS3.5 section 8.2.
    """
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
        return f"{photometric} does not have {samples} samples per pixel"
    if bits_allocated not in (8, 16, 32):
        return f"Bits Allocated {bits_allocated} is not 8, 16 or 32"
    if bits_stored is None or not 1 <= bits_stored <= bits_allocated:
        return f"Bits Stored {bits_stored} does not fit Bits Allocated {bits_allocated}"
    if signed and photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return f"{photometric} samples must be unsigned"
    if transfer_syntax in NATIVE_SYNTAXES:
        return None
    if photometric == "PALETTE COLOR" and transfer_syntax in LOSSY_METHODS:
        return f"{name} is lossy and would corrupt PALETTE COLOR indices"
    if transfer_syntax == uid.JPEG2000Lossless and photometric != "PALETTE COLOR":
        # pylibjpeg-openjpeg codes up to 24 bits losslessly. Its irreversible path breaks beyond
        # 20 bits, OpenJPEG cannot decode OpenJPH's 32-bit streams, and pydicom's RLE, JPEG-LS
        # and palette profiles stop at 16 bits, so the rest keep to 8- and 16-bit containers.
        if bits_stored > 24:
            return f"{name} holds at most 24-bit samples"
    elif bits_allocated == 32:
        return f"{name} holds samples of Bits Allocated 8 or 16 only"
    if transfer_syntax in (uid.JPEG2000Lossless, uid.JPEG2000):
        if min(ds.get("Rows") or 0, ds.get("Columns") or 0) < OPENJPEG_MIN_SIZE:
            return f"{name} needs at least {OPENJPEG_MIN_SIZE} rows and columns"
    if transfer_syntax in (uid.JPEGLSLossless, uid.JPEGLSNearLossless):
        frame_bytes = (ds.get("Rows") or 0) * (ds.get("Columns") or 0) * samples * bits_allocated
        if frame_bytes // 8 < CHARLS_MIN_FRAME_BYTES:
            return f"{name} needs frames of at least {CHARLS_MIN_FRAME_BYTES} bytes"
    if transfer_syntax == uid.JPEGBaseline8Bit:
        if bits_allocated != 8 or bits_stored != 8 or signed:
            return "JPEG Baseline holds 8-bit unsigned samples only"
    if transfer_syntax == uid.HTJ2K and bits_stored != bits_allocated:
        # The codestream declares the container's precision (see above): lossy ringing would
        # decode beyond Bits Stored, which a reader that masks to High Bit wraps round.
        return f"{name} holds samples that fill Bits Allocated only"
    lossless_jpeg_or_rle = transfer_syntax in (uid.JPEGLosslessSV1, uid.RLELossless)
    if lossless_jpeg_or_rle and bits_stored <= 8 < bits_allocated:
        # pydicom encodes such samples in one byte but decodes them expecting two.
        return f"{name} needs Bits Allocated 8 for {bits_stored}-bit samples"
    if transfer_syntax in (uid.JPEGLosslessSV1, uid.JPEGLSLossless) and bits_stored < 2:
        return f"{name} needs at least 2 bits per sample"
    if transfer_syntax == uid.JPEGLSNearLossless:
        if signed:
            # JPEG-LS codes samples unsigned: the NEAR error could flip a sign at the range ends.
            return "JPEG-LS Near-Lossless holds unsigned samples only"
        if 2**bits_stored - 1 < 2 * JPEG_LS_NEAR_LOSSLESS_ERROR:
            # ISO 14495-1 bounds NEAR by MAXVAL / 2.
            return f"JPEG-LS Near-Lossless with NEAR {JPEG_LS_NEAR_LOSSLESS_ERROR} needs more bits"
    if photometric == "YBR_FULL" and bits_allocated != 8 and transfer_syntax in (
        uid.RLELossless, uid.JPEGLSLossless, uid.JPEGLSNearLossless
    ):
        return f"{name} holds YBR_FULL in 8-bit samples only"
    return None


def coded_photometrics(ds: Dataset, transfer_syntax: str) -> frozenset[str]:
    """The Photometric Interpretations `encode_pixels` can code ds's pixels as in that syntax:
    the default, and the alternatives its `coded_photometric` argument may choose."""
    default = _coded_photometric(ds, transfer_syntax)
    photometric = ds.get("PhotometricInterpretation")
    if transfer_syntax == uid.JPEGBaseline8Bit and ds.get("SamplesPerPixel") == 3:
        # libjpeg converts RGB to YCbCr but not back, so only RGB input can be coded as RGB.
        return frozenset({default, "YBR_FULL", *(["RGB"] if photometric == "RGB" else [])})
    if transfer_syntax in MCT_SYNTAXES and photometric == "RGB":
        return frozenset({default, "RGB"})
    return frozenset({default})


def encode_pixels(
    ds: Dataset, pixels: np.ndarray, transfer_syntax: str, coded_photometric: str | None = None
) -> None:
    """Store `pixels` as ds.PixelData in `transfer_syntax` (a UID string), in place.

    `pixels` has pixel_array's shape and is described by ds's Image Pixel module as native data.
    Sets the file meta Transfer Syntax UID and whatever the syntax requires of the pixel
    description (Photometric Interpretation, Planar Configuration, the lossy compression
    attributes). `coded_photometric` picks one of `coded_photometrics` (default: the module
    docstring's rule). Raises ValueError when `encodable` refuses, when the syntax cannot code
    `coded_photometric`, or when `pixels` does not match ds's description.
    """
    reason = encodable(ds, transfer_syntax)
    if reason is not None:
        raise ValueError(reason)
    coded = coded_photometric or _coded_photometric(ds, transfer_syntax)
    if coded not in coded_photometrics(ds, transfer_syntax):
        raise ValueError(
            f"{uid.UID(transfer_syntax).name} cannot code {ds.PhotometricInterpretation} "
            f"pixels as {coded}"
        )
    frames = _as_frames(ds, pixels)
    if transfer_syntax in NATIVE_SYNTAXES:
        _store_native(ds, frames, transfer_syntax)
    else:
        # Encode before touching ds, so that a failing encoder leaves it as it was.
        codestreams = _encode_frames(ds, frames, transfer_syntax, coded)
        ds.PhotometricInterpretation = coded
        if ds.SamplesPerPixel == 3:
            # RLE codes each colour plane as a segment of its own: colour-by-plane (PS3.5 G.2,
            # its note); the other codestreams carry their own layout, declared 0.
            ds.PlanarConfiguration = 1 if transfer_syntax == uid.RLELossless else 0
        ds.PixelData = encapsulate(codestreams)
        ds["PixelData"].VR = VR.OB
        ds["PixelData"].is_undefined_length = True
        if transfer_syntax in LOSSY_METHODS:
            _record_lossy_compression(ds, frames, codestreams, LOSSY_METHODS[transfer_syntax])
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        ds.pop(keyword, None)  # they indexed the previous Pixel Data
    if not hasattr(ds, "file_meta"):
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.UID(transfer_syntax)


def _as_frames(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """`pixels` as (frames, rows, cols, samples) in the container dtype of Bits Allocated."""
    expected = (int(ds.get("NumberOfFrames") or 1), ds.Rows, ds.Columns, ds.SamplesPerPixel)
    if pixels.shape != _pixel_array_shape(*expected):
        raise ValueError(
            f"pixels shape {pixels.shape} does not match the dataset's "
            f"{_pixel_array_shape(*expected)}"
        )
    if pixels.dtype.kind not in "iu":
        raise ValueError(f"pixels dtype {pixels.dtype} is not an integer type")
    bits = ds.BitsStored
    signed = ds.PixelRepresentation == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if pixels.size and (pixels.min() < low or pixels.max() > high):
        raise ValueError(f"pixel values fall outside [{low}, {high}] of Bits Stored {bits}")
    container = np.dtype(f"<{'i' if signed else 'u'}{ds.BitsAllocated // 8}")
    # The codecs read rows straight from memory, so views (slices, transposes) are copied.
    return np.ascontiguousarray(pixels, dtype=container).reshape(expected)


def _pixel_array_shape(frames: int, rows: int, columns: int, samples: int) -> tuple[int, ...]:
    return (*((frames,) if frames > 1 else ()), rows, columns, *((samples,) if samples > 1 else ()))


def _store_native(ds: Dataset, frames: np.ndarray, transfer_syntax: str) -> None:
    if ds.SamplesPerPixel == 3 and ds.get("PlanarConfiguration") == 1:
        frames = frames.transpose(0, 3, 1, 2)
    data = frames.tobytes()
    ds.PixelData = data + b"\0" * (len(data) % 2)  # PS3.5 7.1.1: values have even length
    # PS3.5 A.1: Implicit VR Little Endian Pixel Data is always OW; explicit VR uses OB for
    # 8-bit samples.
    implicit = transfer_syntax == uid.ImplicitVRLittleEndian
    ds["PixelData"].VR = VR.OB if ds.BitsAllocated == 8 and not implicit else VR.OW
    ds["PixelData"].is_undefined_length = False


def _encode_frames(
    ds: Dataset, frames: np.ndarray, transfer_syntax: str, coded_photometric: str
) -> list[bytes]:
    """One codestream per frame, coded as `coded_photometric`."""
    if transfer_syntax in PYDICOM_ENCODED:
        plugin, options = PYDICOM_ENCODED[transfer_syntax]

        def encode(options: dict) -> list[bytes]:
            # pylibjpeg-openjpeg applies the multi-component transform only when told the
            # output is YBR_RCT / YBR_ICT.
            pixel_options = as_pixel_options(
                ds,
                photometric_interpretation=coded_photometric,
                planar_configuration=0,
                **options,
            )
            return list(
                get_encoder(transfer_syntax).iter_encode(
                    frames.reshape(_pixel_array_shape(*frames.shape)),
                    encoding_plugin=plugin,
                    **pixel_options,
                )
            )

        if transfer_syntax != uid.JPEG2000:
            return encode(options)
        # OpenJPEG measures PSNR against the stored range.
        codestreams = encode(
            {"j2k_psnr": [J2K_PSNR_DB + 20 * math.log10(_range_headroom(ds, frames))]})
        stored_bytes = frames.size * ds.BitsStored / 8
        if stored_bytes / sum(len(c) for c in codestreams) > J2K_MAX_RATIO:
            codestreams = encode({"j2k_cr": [J2K_MAX_RATIO]})
        return codestreams
    encode_frame = _imagecodecs_frame_encoder(
        ds, transfer_syntax, coded_photometric, _range_headroom(ds, frames)
    )
    return [bytes(encode_frame(frame)) for frame in _codec_samples(ds, frames)]


def _range_headroom(ds: Dataset, frames: np.ndarray) -> float:
    """How many times the stored range exceeds the span of the values present."""
    span = int(frames.max()) - int(frames.min()) if frames.size else 0
    return (2**ds.BitsStored - 1) / max(span, 1)


def _coded_photometric(ds: Dataset, transfer_syntax: str) -> str:
    if ds.SamplesPerPixel == 3 and transfer_syntax == uid.JPEGBaseline8Bit:
        return "YBR_FULL_422"
    if ds.PhotometricInterpretation == "RGB" and transfer_syntax in MCT_SYNTAXES:
        return "YBR_ICT" if transfer_syntax in LOSSY_METHODS else "YBR_RCT"
    return ds.PhotometricInterpretation


def _codec_samples(ds: Dataset, frames: np.ndarray) -> np.ndarray:
    """Frames as libjpeg and OpenJPH take them: (rows, cols[, 3]) each, in the smallest container
    of Bits Stored, from which they take the sample precision."""
    samples = frames.astype(f"{frames.dtype.kind}{1 if ds.BitsStored <= 8 else 2}", copy=False)
    return samples[..., 0] if ds.SamplesPerPixel == 1 else samples


def _imagecodecs_frame_encoder(
    ds: Dataset, transfer_syntax: str, coded_photometric: str, range_headroom: float
) -> Callable[[np.ndarray], bytes | bytearray]:
    colour = {"RGB": "RGB", "YBR_FULL": "YCbCr"}.get(ds.PhotometricInterpretation)
    if transfer_syntax == uid.JPEGBaseline8Bit:
        if colour is None:
            return lambda frame: imagecodecs.jpeg8_encode(frame, level=JPEG_BASELINE_QUALITY)
        return lambda frame: imagecodecs.jpeg8_encode(
            frame,
            level=JPEG_BASELINE_QUALITY,
            colorspace=colour,
            outcolorspace="RGB" if coded_photometric == "RGB" else "YCbCr",
            subsampling="422" if coded_photometric == "YBR_FULL_422" else "444",
        )
    if transfer_syntax == uid.JPEGLosslessSV1:
        # libjpeg subsamples YCbCr chroma even in lossless mode; an untyped colour space codes
        # the three YBR_FULL components as they are.
        lossless_colour = "UNKNOWN" if colour == "YCbCr" else colour
        stored_bits = 2**ds.BitsStored - 1
        # Lossless JPEG has no sign: signed samples travel as their two's complement bit
        # pattern within Bits Stored, which pydicom sign-extends on decoding.
        return lambda frame: imagecodecs.jpeg8_encode(
            frame.view(frame.dtype.str.replace("i", "u")) & stored_bits,
            lossless=True,
            predictor=1,
            bitspersample=ds.BitsStored,
            colorspace=lossless_colour,
            outcolorspace=lossless_colour,
        )
    reversible = transfer_syntax not in LOSSY_METHODS
    options: dict[str, object] = {
        "reversible": reversible,
        "rgb": coded_photometric in ("YBR_RCT", "YBR_ICT"),  # the multi-component transform
        "planar": False,
    }
    if not reversible:
        container_bits = 8 if ds.BitsStored <= 8 else 16
        options["level"] = (
            HTJ2K_QUANTIZATION_STEP / 2 ** (container_bits - ds.BitsStored) / range_headroom
        )
    if transfer_syntax == uid.HTJ2KLosslessRPCL:
        # OpenJPH's default progression is RPCL already; the syntax also needs TLM markers, and
        # tile-parts at resolution boundaries let a reader stop after any resolution.
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
