"""Read pixels in every supported transfer syntax, write them back in a chosen one, and convert
whole trees to a target syntax.

Reading goes through pydicom's pixel backends (pylibjpeg-libjpeg, -openjpeg, -rle, pyjpegls);
writing through `codecs.encode_pixels`.

Colour convention of `decode_pixels`: with `as_rgb=True` (the default, for OCR and redaction)
colour comes back as RGB whatever the input's Photometric Interpretation; with `as_rgb=False` it
comes back as stored: YBR_FULL and YBR_FULL_422 as full-resolution YBR_FULL, which avoids the
rounding of a YBR -> RGB -> YBR round trip and so keeps lossless conversions bit-exact. The
JPEG 2000 decoders always undo the multi-component transform, so YBR_RCT and YBR_ICT come back
as RGB either way. PALETTE COLOR comes back as indices, monochrome as stored values.
`decoded_photometric` names the interpretation of the array.

Photometric rule when writing: the input's own interpretation is written back whenever the
output syntax can code it (`codecs.coded_photometrics`): a YBR_FULL_422 JPEG stays YBR_FULL_422,
an RGB JPEG 2000 stays RGB, YBR_RCT stays YBR_RCT. Otherwise the encoder's default applies (for
example YBR_RCT read from JPEG 2000 is written to RLE as RGB) and the note says so. Bit depth and
signedness never change.

Fallback rule (`choose_output_syntax`), for a syntax that cannot hold the image's pixel
description: try, in order, the requested syntax, the lossless syntax of its own family
(`SAME_FAMILY_LOSSLESS`), JPEG 2000 Lossless, RLE Lossless, Explicit VR Little Endian, and write
the first that `codecs.encodable` accepts, with a note for the audit. Lossy inputs: redaction
needs a new lossy generation in the input's syntax (lossy_policy "same"); lossy_policy
"lossless" writes the same family's lossless syntax instead. Syntaxes read but not written
(Explicit VR Big Endian, JPEG Extended, JPEG Lossless Process 14) take the same rule: Big Endian
becomes Explicit VR Little Endian, the JPEG ones JPEG Lossless SV1.

Corrupt or truncated pixel data raises CodecError with the codec's own reason; `transcode_tree`
quarantines such a file and goes on.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom import dcmread, uid
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels import convert_color_space, get_decoder
from pydicom.tag import Tag

from deid_pipeline.core import codecs
from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.discovery import FileKind, discover
from deid_pipeline.core.quarantine import quarantine_copy
from deid_pipeline.core.quiet import file_messages_muted

LossyPolicy = Literal["same", "lossless"]
LOSSY_POLICIES: tuple[LossyPolicy, ...] = ("same", "lossless")

# What users type for --syntax: every syntax codecs.encode_pixels writes.
SYNTAX_NAMES: dict[str, str] = {
    "implicit-le": uid.ImplicitVRLittleEndian,
    "explicit-le": uid.ExplicitVRLittleEndian,
    "deflated": uid.DeflatedExplicitVRLittleEndian,
    "rle": uid.RLELossless,
    "jpeg-baseline": uid.JPEGBaseline8Bit,
    "jpeg-lossless": uid.JPEGLosslessSV1,
    "jpegls": uid.JPEGLSLossless,
    "jpegls-near": uid.JPEGLSNearLossless,
    "j2k-lossless": uid.JPEG2000Lossless,
    "j2k": uid.JPEG2000,
    "htj2k-lossless": uid.HTJ2KLossless,
    "htj2k-rpcl": uid.HTJ2KLosslessRPCL,
    "htj2k": uid.HTJ2K,
}
# Syntaxes read but not written: their images are written per the fallback rule.
READ_ONLY_SYNTAXES = frozenset({uid.ExplicitVRBigEndian, uid.JPEGExtended12Bit, uid.JPEGLossless})
READABLE_SYNTAXES = codecs.ENCODABLE_SYNTAXES | READ_ONLY_SYNTAXES
# Syntaxes whose lossless form has a UID of its own, so the syntax itself means lossy.
LOSSY_METHODS = {**codecs.LOSSY_METHODS, uid.JPEGExtended12Bit: "ISO_10918_1"}
LOSSY_SYNTAXES = frozenset(LOSSY_METHODS)
SAME_FAMILY_LOSSLESS = {
    uid.JPEGBaseline8Bit: uid.JPEGLosslessSV1,
    uid.JPEGExtended12Bit: uid.JPEGLosslessSV1,
    # Selection Value 1 is one of Process 14's predictors.
    uid.JPEGLossless: uid.JPEGLosslessSV1,
    uid.JPEGLSNearLossless: uid.JPEGLSLossless,
    uid.JPEG2000: uid.JPEG2000Lossless,
    uid.HTJ2K: uid.HTJ2KLossless,
    # Big Endian is retired (PS3.5 A.3); its successor is the little endian form.
    uid.ExplicitVRBigEndian: uid.ExplicitVRLittleEndian,
}
FALLBACK_SYNTAXES = (uid.JPEG2000Lossless, uid.RLELossless, uid.ExplicitVRLittleEndian)
# JPEG (ISO 10918, 14495) and JPEG 2000 (ISO 15444) codestreams all end with FFD9 (EOI / EOC).
# Some JPEG and JPEG-LS decoders fill a truncated stream with grey instead of failing, so the
# marker is checked first. Encoders pad fragments to even length with 00 or FF.
END_OF_CODESTREAM = b"\xff\xd9"
MARKER_PADDING = b"\x00\xff"
MARKER_TERMINATED_SYNTAXES = READABLE_SYNTAXES - {
    uid.ImplicitVRLittleEndian,
    uid.ExplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.RLELossless,
}
# pydicom tries its plugins in a fixed order; for JPEG-LS, CharLS (pyjpegls) decodes 3 to 7
# times faster than libjpeg (pylibjpeg), which comes first.
PREFERRED_DECODING_PLUGINS = {uid.JPEGLSLossless: "pyjpegls", uid.JPEGLSNearLossless: "pyjpegls"}
PIXEL_DATA_TAG = Tag("PixelData")
PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Bytes per word of the VRs whose values pydicom keeps as raw bytes in the file's byte order.
WORD_SIZES = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}
REASON_MAX_CHARS = 300


class CodecError(Exception):
    """Pixel data that cannot be decoded or written; the message is the reason and quotes no
    value from the file."""


def resolve_syntax(name_or_uid: str) -> str:
    """The UID of a writable syntax given by its `SYNTAX_NAMES` name or its UID."""
    syntax = SYNTAX_NAMES.get(name_or_uid.strip().lower(), name_or_uid.strip())
    if syntax not in codecs.ENCODABLE_SYNTAXES:
        raise ValueError(
            f"unknown or unwritable transfer syntax {name_or_uid!r}; "
            f"use a UID or one of: {', '.join(SYNTAX_NAMES)}"
        )
    return syntax


def syntax_name(syntax: str) -> str:
    return uid.UID(syntax).name


def decoded_photometric(ds: Dataset, *, as_rgb: bool = True) -> str:
    """The Photometric Interpretation of `decode_pixels(ds, as_rgb=as_rgb)`."""
    photometric = ds.PhotometricInterpretation
    if photometric in ("YBR_RCT", "YBR_ICT"):
        return "RGB"
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        return "RGB" if as_rgb else "YBR_FULL"
    return photometric


def decode_pixels(ds: Dataset, *, as_rgb: bool = True) -> np.ndarray:
    """ds's pixels as pydicom's pixel_array shapes them (frames, rows, columns, samples; unit
    axes dropped), in the colour convention of the module docstring, writable.

    Raises CodecError, with the codec's reason, for missing, truncated or corrupt pixel data.
    """
    syntax = transfer_syntax_of(ds)
    check_pixel_data(ds, syntax)
    try:
        pixels = _decode(ds, syntax, as_rgb)
    except Exception as exc:  # noqa: BLE001 - each backend raises its own types
        raise CodecError(_one_line(exc)) from None
    pixels = pixels if pixels.flags.writeable else pixels.copy()
    if syntax in LOSSY_SYNTAXES:
        # Lossy decoders can overshoot Bits Stored (HTJ2K streams code the container precision);
        # the image cannot hold such values, so they are clamped as a viewer would.
        np.clip(pixels, *_stored_range(ds), out=pixels)
    return pixels


def _decode(ds: Dataset, syntax: str, as_rgb: bool) -> np.ndarray:
    decoder = get_decoder(syntax)
    preferred = PREFERRED_DECODING_PLUGINS.get(syntax)
    if preferred in decoder.available_plugins:
        try:
            return decoder.as_array(ds, as_rgb=as_rgb, decoding_plugin=preferred)[0]
        except Exception:  # noqa: BLE001 - the other plugins may still read it, or say why not
            pass
    return decoder.as_array(ds, as_rgb=as_rgb)[0]


def _stored_range(ds: Dataset) -> tuple[int, int]:
    bits = ds.BitsStored
    if ds.PixelRepresentation == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def transfer_syntax_of(ds: Dataset) -> str:
    syntax = ds.get("file_meta", Dataset()).get("TransferSyntaxUID")
    if not syntax:
        raise CodecError("no Transfer Syntax UID in the file meta information")
    return syntax


# Decoding allocates the whole image first: a header declaring more than this (a decompression
# bomb; no real series frame stack comes near it) is refused before anything is allocated.
MAX_DECODED_BYTES = 4 << 30


def check_pixel_data(ds: Dataset, syntax: str) -> None:
    """The structural checks that need no decoding: an image has its Pixel Data, decodes to no
    more than MAX_DECODED_BYTES, and every JPEG-family codestream ends with its end marker."""
    if not any(keyword in ds for keyword in PIXEL_DATA_KEYWORDS):
        if _is_image(ds):
            # pydicom drops an element cut off by the end of the file, and the whole data set
            # when that element is an encapsulated Pixel Data.
            raise CodecError("image without Pixel Data: the file is truncated")
        return
    if declared_size(ds) > MAX_DECODED_BYTES:
        raise CodecError(f"too large: the declared image decodes to more than "
                         f"{MAX_DECODED_BYTES >> 30} GiB")
    if syntax not in MARKER_TERMINATED_SYNTAXES or "PixelData" not in ds:
        return
    frame_count = int(ds.get("NumberOfFrames") or 1)
    try:
        for index, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=frame_count)):
            if not frame.rstrip(MARKER_PADDING).endswith(END_OF_CODESTREAM):
                raise CodecError(
                    f"truncated codestream: frame {index + 1} of {frame_count} has no end marker"
                )
    except (ValueError, EOFError, KeyError) as exc:  # pydicom's encapsulation parser
        raise CodecError(f"malformed encapsulated Pixel Data: {_one_line(exc)}") from None


def declared_size(ds: Dataset) -> int:
    """Bytes the image decodes to by what its header declares (a bomb declares much)."""
    try:
        values = [int(ds.get(k) or d) for k, d in (("Rows", 0), ("Columns", 0), (
            "NumberOfFrames", 1), ("SamplesPerPixel", 1))]
        bytes_per_sample = -(-int(ds.get("BitsAllocated") or 8) // 8)
    except (TypeError, ValueError):
        return 0  # a malformed count is the decoder's to refuse
    rows, columns, frames, samples = values
    return rows * columns * max(frames, 1) * max(samples, 1) * bytes_per_sample


def _is_image(ds: Dataset) -> bool:
    file_meta = ds.get("file_meta", Dataset())
    sop_class = file_meta.get("MediaStorageSOPClassUID") or ds.get("SOPClassUID") or ""
    return len(ds) == 0 or "Rows" in ds or "Image Storage" in uid.UID(sop_class).name


def choose_output_syntax(
    ds: Dataset, requested: str, lossy_policy: LossyPolicy = "same", *, as_rgb: bool = True
) -> tuple[str, str | None]:
    """The syntax to write ds's pixels in (decoded with `as_rgb`), and a note for the audit when
    it is not `requested`. Applies the lossy policy, then the fallback rule of the module
    docstring. Raises CodecError when no writable syntax holds the pixel description."""
    if lossy_policy not in LOSSY_POLICIES:
        raise ValueError(f"lossy_policy must be one of {LOSSY_POLICIES}, not {lossy_policy!r}")
    notes = []
    wanted = requested
    if lossy_policy == "lossless" and requested in LOSSY_SYNTAXES:
        wanted = SAME_FAMILY_LOSSLESS[requested]
        notes.append(f"lossless policy: {syntax_name(wanted)} instead of {syntax_name(requested)}")
    candidates = dict.fromkeys([wanted, SAME_FAMILY_LOSSLESS.get(wanted, wanted),
                                *FALLBACK_SYNTAXES])
    first_refusal = None
    for candidate in candidates:
        reason = codecs.encodable(_encoder_description(ds, candidate, as_rgb), candidate)
        if reason is None:
            if first_refusal is not None:
                notes.append(f"{syntax_name(wanted)} cannot hold this image ({first_refusal}); "
                             f"wrote {syntax_name(candidate)}")
            return candidate, "; ".join(notes) or None
        first_refusal = first_refusal or reason
    raise CodecError(f"no writable transfer syntax holds this image: {reason}")


def write_pixels_back(
    ds: Dataset,
    pixels: np.ndarray,
    original_syntax: str,
    lossy_policy: LossyPolicy = "same",
    *,
    as_rgb: bool = True,
) -> str | None:
    """Store `pixels` (as `decode_pixels(ds, as_rgb=as_rgb)` returned them, edited) in ds, in
    place, in the input's own syntax where it can hold them; returns a note for the audit when
    the syntax or Photometric Interpretation differs from the input's.

    A lossy input that does not yet say so gets Lossy Image Compression "01" and the ratio and
    method of its own compression; a new lossy generation appends its own (PS3.3 C.7.6.1.1.5).
    """
    syntax, syntax_note = choose_output_syntax(ds, original_syntax, lossy_policy, as_rgb=as_rgb)
    record_input_compression(ds, original_syntax)
    photometric_note = _encode(ds, pixels, syntax, as_rgb)
    return "; ".join(note for note in (syntax_note, photometric_note) if note) or None


def record_input_compression(ds: Dataset, syntax: str) -> None:
    """Mark a lossy input as lossy before its compressed Pixel Data is replaced. Once "01", the
    attribute is never reset, and the existing history is kept."""
    if syntax not in LOSSY_SYNTAXES or ds.get("LossyImageCompression") == "01":
        return
    frames = int(ds.get("NumberOfFrames") or 1)
    native_bytes = frames * ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = f"{native_bytes / len(ds.PixelData):.2f}"
    ds.LossyImageCompressionMethod = LOSSY_METHODS[syntax]


def _encoder_description(ds: Dataset, syntax: str, as_rgb: bool) -> Dataset:
    """ds's pixel description as `encode_pixels` will see it for that syntax."""
    description = Dataset()
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored",
                    "PixelRepresentation"):
        description[keyword] = ds[keyword]
    description.PhotometricInterpretation = _pixels_photometric(ds, syntax, as_rgb)
    return description


def _pixels_photometric(ds: Dataset, syntax: str, as_rgb: bool) -> str:
    """The interpretation of the pixels handed to the encoder: as decoded, except that YBR_FULL
    input goes back to YBR_FULL for the syntaxes that store samples as given (JPEG Baseline
    converts RGB to YCbCr itself)."""
    decoded = decoded_photometric(ds, as_rgb=as_rgb)
    if ds.PhotometricInterpretation == "YBR_FULL" and syntax != uid.JPEGBaseline8Bit:
        return "YBR_FULL"
    return decoded


def _encode(ds: Dataset, pixels: np.ndarray, syntax: str, as_rgb: bool) -> str | None:
    """Encode in place, keeping the input's Photometric Interpretation where the syntax can
    code it; a note when it could not."""
    original = ds.PhotometricInterpretation
    decoded = decoded_photometric(ds, as_rgb=as_rgb)
    photometric = _pixels_photometric(ds, syntax, as_rgb)
    if photometric != decoded:
        pixels = convert_color_space(pixels, decoded, photometric)
    ds.PhotometricInterpretation = photometric
    coded = original if original in codecs.coded_photometrics(ds, syntax) else None
    try:
        codecs.encode_pixels(ds, pixels, syntax, coded_photometric=coded)
    except Exception as exc:  # noqa: BLE001 - each encoder raises its own types
        ds.PhotometricInterpretation = original
        raise CodecError(f"{syntax_name(syntax)} encoder: {_one_line(exc)}") from None
    if ds.original_encoding[1] is False:
        _convert_to_little_endian(ds)
    if ds.PhotometricInterpretation != original:
        return (f"Photometric Interpretation {original} written as "
                f"{ds.PhotometricInterpretation}: {syntax_name(syntax)} cannot code {original}")
    return None


def _convert_to_little_endian(ds: Dataset) -> None:
    """Byte-swap the word values of a dataset read as big endian (the new Pixel Data is little
    endian already), so that it can be saved in the little endian syntax it now declares.
    pydicom converts the other values itself; UN values have no known word size and stay."""

    def swap(_: Dataset, element: DataElement) -> None:
        if element.VR in WORD_SIZES and element.tag != PIXEL_DATA_TAG and element.value:
            words = np.frombuffer(element.value, f"u{WORD_SIZES[element.VR]}")
            element.value = words.byteswap().tobytes()

    ds.walk(swap)
    is_implicit_vr, _ = ds.original_encoding
    ds.set_original_encoding(is_implicit_vr, True, ds.original_character_set)


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line, without object addresses that vary run to run."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", " ".join(str(exc).split()))
    return (text or type(exc).__name__)[:REASON_MAX_CHARS]


@dataclass(frozen=True)
class FileTranscode:
    action: Literal["transcoded", "copied"]
    syntax: str  # of the output
    note: str | None = None


def transcode_file(src_path: Path, dst_path: Path, syntax: str) -> FileTranscode:
    """Write src as dst in `syntax` (a name or UID), atomically; src is only read.

    A file already in that syntax, or without pixel data, is copied byte for byte. The output
    keeps the SOP Instance UID, since it is the same instance in another encoding, unless the
    conversion is lossy: PS3.3 C.7.6.1.1.5 makes a lossy compressed version of a DICOM image a
    DERIVED image with a new SOP Instance UID, derived here from the old one and the syntax so
    that converting again gives the same UID. Raises CodecError for pixel data that cannot be
    read or written.
    """
    target = resolve_syntax(syntax)
    ds = dcmread(src_path)
    source = transfer_syntax_of(ds)
    check_pixel_data(ds, source)
    if source == target or "PixelData" not in ds:
        return _copy(src_path, dst_path, source, None if source == target else "no Pixel Data")
    output, note = choose_output_syntax(ds, target, as_rgb=False)
    if output == source:
        return _copy(src_path, dst_path, source, note)
    pixels = decode_pixels(ds, as_rgb=False)
    record_input_compression(ds, source)
    photometric_note = _encode(ds, pixels, output, as_rgb=False)
    if output in LOSSY_SYNTAXES:
        _derive_lossy_instance(ds, output)
    write_atomically(dst_path, lambda tmp: ds.save_as(tmp, enforce_file_format=True))
    return FileTranscode(
        "transcoded", output, "; ".join(n for n in (note, photometric_note) if n) or None
    )


def _copy(src_path: Path, dst_path: Path, syntax: str, note: str | None) -> FileTranscode:
    write_atomically(dst_path, lambda tmp: shutil.copyfile(src_path, tmp))
    return FileTranscode("copied", syntax, note)


def _derive_lossy_instance(ds: Dataset, syntax: str) -> None:
    new_uid = uid.generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), syntax])
    ds.SOPInstanceUID = new_uid
    ds.file_meta.MediaStorageSOPInstanceUID = new_uid
    if ds.get("ImageType"):
        image_type = ds["ImageType"]
        values = list(image_type.value) if image_type.VM > 1 else [image_type.value]
        ds.ImageType = ["DERIVED", *values[1:]]


@dataclass
class TranscodeReport:
    transcoded: int = 0
    copied: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # quarantine reason -> files
    notes: Counter[str] = field(default_factory=Counter)  # fallback / photometric note -> files

    def summary(self) -> str:
        line = (f"{self.transcoded} transcoded, {self.copied} copied unchanged, "
                f"{self.quarantined} quarantined")
        if self.reasons:
            line += " (" + "; ".join(f"{n}× {r}" for r, n in sorted(self.reasons.items())) + ")"
        return line


def transcode_tree(src: Path, dst: Path, syntax: str, quarantine_dir: Path) -> TranscodeReport:
    """Transcode every input under src to the same relative path under dst. A file that cannot
    be transcoded is copied under quarantine_dir with a `.reason.txt` beside it, and the batch
    goes on."""
    target = resolve_syntax(syntax)
    report = TranscodeReport()
    for source in discover(src):
        try:
            if source.refusal:
                raise CodecError(source.refusal)
            if source.kind is FileKind.SLIDE:
                raise CodecError("whole-slide images have no DICOM transfer syntax")
            with file_messages_muted():
                outcome = transcode_file(source.path, Path(dst) / source.relpath, target)
        # Every failure of one file is that file's quarantine reason; the batch goes on.
        except Exception as exc:  # noqa: BLE001
            reason = quarantine_reason(exc)
            quarantine(source.path, source.relpath, reason, Path(quarantine_dir))
            report.quarantined += 1
            report.reasons[reason] += 1
            continue
        if outcome.action == "copied":
            report.copied += 1
        else:
            report.transcoded += 1
        if outcome.note:
            report.notes[outcome.note] += 1
    return report


def quarantine_reason(exc: Exception) -> str:
    """A reason that names what went wrong without quoting the file (messages can hold PHI)."""
    if isinstance(exc, CodecError):
        return str(exc)
    if isinstance(exc, InvalidDicomError):
        return "not a DICOM file"
    if isinstance(exc, EOFError | OSError):
        return f"unreadable or truncated file ({type(exc).__name__})"
    return f"cannot be transcoded ({type(exc).__name__})"


def quarantine(path: Path, relpath: str, reason: str, quarantine_dir: Path) -> None:
    """The input (it may hold PHI) and its reason, at its own relative path under
    quarantine_dir (transcode inputs are already de-identified)."""
    target = quarantine_dir / relpath
    quarantine_copy(path, target, target.with_name(target.name + ".reason.txt"), relpath, reason)
