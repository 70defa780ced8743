"""A drop folder of bad inputs for the reliability tests. Each case writes its files, plants its
own identifying values and says what must become of each file: de-identified, or quarantined
with a reason that names the fault.

Every case has its own patient, so a value found in an output leads back to its case.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless

from deid_pipeline_tests.dicom_factory import Patient, Study, realistic_image

DEIDENTIFIED = "de-identified"
# Invented family names that no fake-name generator produces: found in an output, they leaked.
FAMILIES = ("QUORVENDALE", "BRASKOWITZ", "MELLINGRAVE", "TOZZARELLI", "VORHANSKY", "PELLIGROVE",
            "ZANDERHOLT", "OKONKWAYO", "FARRINGDALE", "KESSELBRINK", "WYNDERMERE", "DRAXWORTH",
            "HOLLENBRAKE", "GRIMSTOWE", "JEVANNECK", "LUDDENFORTH", "MARCHBANKE", "NETHERCLIFF",
            "ORMSKIRKE", "PRENDERGHAST", "RAVENSTOKE", "SILVERTHWAITE", "THORNBECKE", "UPPINGHAME",
            "VALLENCOURT", "WHISTLECROFT", "YARBOROUGHE", "ABERNATHIE", "BLACKTHORNE", "CRANSWICKE",
            "DUNSTERVILLE", "ELLERSLIEGH", "FOTHERGALE", "GAINSBOROWE", "HEPPLEWHITE", "IRONSIDGE",
            "JOLLIFFANT", "KNIGHTSBRIDGE", "LONGBOTTOMLY", "MOUNTJOYCE", "NORTHCOTTE", "OSGOODBY",
            "PEMBERTONE", "QUATERMAINE", "RUTHERSTONE", "STRATHMORLE", "TWEEDSMUIRE", "UNDERHALLE")
GIVEN = ("ZEPHYRINA", "THADDEUSZ")
SMALL = (16, 16)
PIXEL_SIZE = (64, 64)  # enough for the pixel stage to read text in, small enough to be quick


@dataclass(frozen=True)
class Identity:
    patient: Patient
    study: Study
    uid_root: str

    @property
    def phi(self) -> tuple[str, ...]:
        return (*re.split(r"[\^=]", self.patient.name), self.patient.patient_id,
                self.patient.birth_date, self.patient.phone, self.study.accession)


def identity(index: int) -> Identity:
    root = f"1.2.826.0.1.3680043.9.8{index:03d}"
    return Identity(
        patient=Patient(name=f"{FAMILIES[index]}^{GIVEN[index % 2]}",
                        patient_id=f"PQX{index:03d}7Z", sex="FM"[index % 2],
                        birth_date=f"19{40 + index}0{1 + index % 9}1{index % 10}",
                        address=f"{index + 3} Quillfeather Lane, Harrowgate",
                        phone=f"555-4{index:02d}-7{index:03d}"),
        study=Study(study_uid=f"{root}.1", accession=f"ACQ{index:03d}9W", study_id=f"SQ{index:03d}",
                    date="20150312", institution="Harrowgate Royal Infirmary",
                    referring="KESTERTON^PRUDENCE", operator="WHITLOCKE^BARNABY"),
        uid_root=root)


def image(who: Identity, *, pixels: tuple[int, int] = SMALL) -> Dataset:
    return realistic_image(patient=who.patient, study=who.study, series_uid=f"{who.uid_root}.2",
                           sop_uid=f"{who.uid_root}.3.1", pixels=pixels)


def encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@dataclass
class Writer:
    """What a case writes with: the drop, a folder outside it, and the case's own patient."""

    root: Path
    outside: Path
    who: Identity

    def put(self, relpath: str, data: bytes) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


@dataclass(frozen=True)
class Case:
    name: str
    # Relative input path -> DEIDENTIFIED, or a phrase the quarantine reason must hold.
    expected: Mapping[str, str]
    write: Callable[[Writer], tuple[str, ...]]  # writes the files, returns the planted values
    # Where a run through the pixel stage must end otherwise than a tags-only run.
    with_pixels: Mapping[str, str] = field(default_factory=dict)
    # Whether this machine can hold the case (file names with newlines, unreadable files).
    possible: Callable[[Path], bool] = lambda root: True

    def expectation(self, pixels: bool) -> dict[str, str]:
        return {**self.expected, **(self.with_pixels if pixels else {})}


CASES: list[Case] = []


def case(name: str, expected: Mapping[str, str], with_pixels: Mapping[str, str] | None = None,
         possible: Callable[[Path], bool] | None = None):
    """Register the decorated writer as a case."""
    def register(write: Callable[[Writer], tuple[str, ...]]):
        CASES.append(Case(name, expected, write, with_pixels or {},
                          possible or (lambda root: True)))
        return write
    return register


def dicom_case(name: str, relpath: str, edit: Callable[[Dataset], bytes | None] | None = None,
               expected: str = DEIDENTIFIED, with_pixels: str | None = None,
               pixels: tuple[int, int] = SMALL, patient_name: str | None = None) -> None:
    """A case of one realistic image of the case's patient (named `patient_name` when given),
    changed by `edit` (which returns the file's bytes, or None to have the changed data set
    written as it is)."""
    def write(w: Writer) -> tuple[str, ...]:
        who = w.who
        if patient_name:
            who = dataclasses.replace(who, patient=dataclasses.replace(who.patient,
                                                                       name=patient_name))
        ds = image(who, pixels=pixels)
        data = edit(ds) if edit else None
        w.put(relpath, encode(ds) if data is None else data)
        return who.phi

    CASES.append(Case(name, {relpath: expected}, write,
                      {relpath: with_pixels} if with_pixels else {}))


@dataclass(frozen=True)
class PlantedCase:
    case: Case
    planted: tuple[str, ...]  # every value the case wrote that identifies its patient


def build_bad_inputs(root: Path, outside: Path) -> list[PlantedCase]:
    """Write every case this machine can hold under `root` (the drop) and `outside` (a folder
    beside it that symbolic links lead to); return those cases with their planted values."""
    root, outside = Path(root), Path(outside)
    root.mkdir(parents=True, exist_ok=True)
    return [PlantedCase(bad, bad.write(Writer(root, outside, identity(index))))
            for index, bad in enumerate(CASES) if bad.possible(root)]


# --- byte surgery on explicit VR little endian files -------------------------------------------

def element_offset(data: bytes, tag: int, vr: str) -> int:
    """Where an element starts in `data` (its first occurrence)."""
    offset = data.find(struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode())
    assert offset >= 0, f"({tag:08X}) not found"
    return offset


def short_value(data: bytes, tag: int, vr: str) -> tuple[int, int]:
    """Start and length of the value of an element with a 16-bit length field."""
    at = element_offset(data, tag, vr)
    return at + 8, struct.unpack("<H", data[at + 6:at + 8])[0]


def set_short_length(data: bytes, tag: int, vr: str, length: int) -> bytes:
    at = element_offset(data, tag, vr) + 6
    return data[:at] + struct.pack("<H", length) + data[at + 2:]


def meta_end(data: bytes) -> int:
    """Where the data set starts: after preamble, magic and the meta group (its length in the
    group length element, the first of the group)."""
    return 132 + 12 + struct.unpack("<I", data[140:144])[0]


ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
UNDEFINED = b"\xff\xff\xff\xff"
REQUEST_SEQUENCE = 0x00400275


def undefined_length_request(ds: Dataset) -> tuple[bytes, int]:
    """ds with its Request Attributes Sequence and items of undefined length, and where that
    sequence starts."""
    ds[REQUEST_SEQUENCE].is_undefined_length = True
    for item in ds.RequestAttributesSequence:
        item.is_undefined_length_sequence_item = True
    data = encode(ds)
    return data, element_offset(data, REQUEST_SEQUENCE, "SQ")


def without_first(data: bytes, marker: bytes, after: int) -> bytes:
    at = data.index(marker, after)
    return data[:at] + data[at + len(marker):]


def nested(depth: int) -> bytes:
    """A Content Sequence nesting `depth` levels of undefined-length sequences and items (pydicom's
    own writer recurses too deep to write it)."""
    opening = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0" + UNDEFINED + b"\xfe\xff\x00\xe0"
    return (opening + UNDEFINED) * depth + (ITEM_DELIMITER + SEQUENCE_DELIMITER) * depth


def encapsulated(ds: Dataset, syntax: str, fragment: bytes, frames: int = 1) -> None:
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([fragment] * frames)
    ds["PixelData"].VR = "OB"
    if frames > 1:
        ds.NumberOfFrames = frames


# A JPEG 2000 codestream start (SOC, SIZ) declaring a 65535 x 65535 image, then the end marker:
# a decoder that trusts it allocates gigabytes before finding no data.
BOMB_J2K = (b"\xff\x4f\xff\x51\x00\x29\x00\x00"
            + struct.pack(">IIIIIIII", 65535, 65535, 0, 0, 65535, 65535, 0, 0)
            + b"\x00\x01\x0f\x01\x01\xff\xd9")
UTF8_NAME = "Ødegård^Zoë"
LATIN1_NAME = "Østergård^Søren"
CHINESE_NAME = "欧阳^娜娜"
JAPANESE_NAME = "ヤマダ^タロウ=山田^太郎=やまだ^たろう"
UNKNOWN_SYNTAX = "1.2.826.0.1.3680043.9.9999.77"
VIDEO_SYNTAXES = {"MPEG2": "1.2.840.10008.1.2.4.100", "MPEG-4 AVC": "1.2.840.10008.1.2.4.102",
                  "HEVC": "1.2.840.10008.1.2.4.107"}


def allows_newlines(root: Path) -> bool:
    probe = root / "probe\nname"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def not_root(root: Path) -> bool:
    return os.geteuid() != 0  # root reads a file whatever its mode


# --- not DICOM ---------------------------------------------------------------------------------

@case("empty file", {"empty.dcm": "not a DICOM file"})
def _empty(w: Writer) -> tuple[str, ...]:
    w.put("empty.dcm", b"")
    return ()


@case("text holding PHI, no suffix", {"notes/referral": "not a DICOM file"})
def _text(w: Writer) -> tuple[str, ...]:
    w.put("notes/referral", f"Re: {w.who.patient.name} {w.who.patient.patient_id}\n".encode() * 30)
    return w.who.phi[:3]


@case("PNG image", {"photo.png": "not a DICOM file"})
def _png(w: Writer) -> tuple[str, ...]:
    w.put("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(200))
    return ()


@case("DICM magic and nothing after", {"magic_only.dcm": "missing SOP Instance UID"})
def _magic_only(w: Writer) -> tuple[str, ...]:
    w.put("magic_only.dcm", bytes(128) + b"DICM")
    return ()


# --- no preamble, header only ------------------------------------------------------------------

def _implicit_data_set_only(ds: Dataset) -> bytes:
    """As ACR-NEMA era writers leave it: no preamble, no meta group, implicit VR."""
    del ds.file_meta
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return buffer.getvalue()


dicom_case("no preamble, implicit VR data set only", "raw/IM0001", _implicit_data_set_only,
           # The pixel stage takes the syntax from the meta group this file has not got.
           with_pixels="no Transfer Syntax UID")
dicom_case("no preamble, meta group and data set", "raw/nopreamble.dcm",
           lambda ds: encode(ds)[132:])
dicom_case("meta group only", "meta_only.dcm", lambda ds: (d := encode(ds))[:meta_end(d)],
           expected="missing SOP Instance UID")

# --- truncated ---------------------------------------------------------------------------------

dicom_case("truncated in the meta group", "cut/meta.dcm", lambda ds: encode(ds)[:150],
           expected="missing SOP Instance UID")
dicom_case("truncated in the patient module", "cut/header.dcm",
           lambda ds: (d := encode(ds))[:element_offset(d, 0x00100030, "DA") + 10],
           expected="truncated")
dicom_case("truncated inside a sequence", "cut/sequence.dcm",
           lambda ds: (d := encode(ds))[:element_offset(d, REQUEST_SEQUENCE, "SQ") + 40],
           expected="truncated")
dicom_case("truncated in the pixel data", "cut/pixels.dcm", lambda ds: encode(ds)[:-300],
           expected="truncated", pixels=PIXEL_SIZE)

# --- element lengths that do not fit -----------------------------------------------------------

dicom_case("element length past the end of the file", "length/past_end.dcm",
           lambda ds: set_short_length(encode(ds), 0x00100010, "PN", 0xFFF0),
           expected="truncated")
dicom_case("element length two bytes too long", "length/misaligned.dcm",
           lambda ds: set_short_length(encode(ds), 0x00100020, "LO", len(ds.PatientID) + 2),
           expected="truncated")


def _odd_length_id(ds: Dataset) -> bytes:
    """Patient ID of odd length, unpadded, as some writers leave it."""
    ds.PatientID = ds.PatientID + "Q"
    data = encode(ds)
    start, length = short_value(data, 0x00100020, "LO")
    return (set_short_length(data[:start + length], 0x00100020, "LO", length - 1)[:-1]
            + data[start + length:])


dicom_case("odd element length", "length/odd.dcm", _odd_length_id)

# --- broken undefined-length sequences ---------------------------------------------------------

dicom_case("sequence without its delimiter", "sq/no_sequence_delimiter.dcm",
           lambda ds: without_first(*_request_and_marker(ds, SEQUENCE_DELIMITER)),
           expected="malformed")
dicom_case("item without its delimiter", "sq/no_item_delimiter.dcm",
           lambda ds: without_first(*_request_and_marker(ds, ITEM_DELIMITER)),
           expected="malformed")
dicom_case("undefined-length sequence open at the end of the file", "sq/open_at_end.dcm",
           lambda ds: (d := undefined_length_request(ds))[0][
               :d[0].index(SEQUENCE_DELIMITER, d[1])],
           expected="truncated")


def _request_and_marker(ds: Dataset, marker: bytes) -> tuple[bytes, bytes, int]:
    data, start = undefined_length_request(ds)
    return data, marker, start


def _deep(ds: Dataset) -> bytes:
    data = encode(ds)
    at = element_offset(data, 0x50000005, "US")  # the first element after (0040,A730)
    return data[:at] + nested(400) + data[at:]


dicom_case("sequences nested 400 deep", "sq/deep.dcm", _deep, expected="nested too deep")

# --- pixel data missing, short, undecodable or absurd -------------------------------------------


def _without_pixels(ds: Dataset) -> None:
    del ds.PixelData


def _short_pixels(ds: Dataset) -> None:
    ds.PixelData = ds.PixelData[:len(ds.PixelData) * 2 // 3 // 2 * 2]


def _bits_allocated_zero(ds: Dataset) -> None:
    ds.BitsAllocated = 0


def _frames_not_a_number(ds: Dataset) -> bytes:
    ds.NumberOfFrames = 2
    data = encode(ds)
    start, _ = short_value(data, 0x00280008, "IS")
    return data[:start] + b"x" + data[start + 1:]


def _bomb_native(ds: Dataset) -> None:
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 99999999


def _bomb_j2k_frames(ds: Dataset) -> None:
    ds.Rows = ds.Columns = 65535
    encapsulated(ds, JPEG2000Lossless, BOMB_J2K, frames=3)
    ds.NumberOfFrames = 99999999


def _bomb_j2k_one_frame(ds: Dataset) -> None:
    ds.Rows = ds.Columns = 65535
    encapsulated(ds, JPEG2000Lossless, BOMB_J2K)


def _unknown_syntax(ds: Dataset) -> bytes:
    ds.file_meta.TransferSyntaxUID = UNKNOWN_SYNTAX
    buffer = io.BytesIO()  # a private syntax says nothing of its encoding: explicit VR LE here
    ds.save_as(buffer, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return buffer.getvalue()


def _corrupt_deflate(ds: Dataset) -> bytes:
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    data = encode(ds)
    start = meta_end(data)
    return (data[:start] + bytes(byte ^ 0x5A for byte in data[start:start + 64])
            + data[start + 64:])


dicom_case("image without Pixel Data", "pixels/none.dcm", _without_pixels, pixels=PIXEL_SIZE)
dicom_case("pixel data shorter than rows x columns x frames", "pixels/short.dcm", _short_pixels,
           with_pixels="less than expected", pixels=PIXEL_SIZE)
dicom_case("Bits Allocated 0", "pixels/bits0.dcm", _bits_allocated_zero,
           with_pixels="'Bits Allocated' value of '0' is invalid", pixels=PIXEL_SIZE)
dicom_case("Number of Frames not a number", "pixels/frames_nan.dcm", _frames_not_a_number,
           with_pixels="pixel data cannot be decoded", pixels=PIXEL_SIZE)
dicom_case("decompression bomb, native: 65535 x 65535 x 99999999", "bomb/native.dcm",
           _bomb_native, with_pixels="too large", pixels=PIXEL_SIZE)
dicom_case("decompression bomb, JPEG 2000: 65535 x 65535 x 99999999", "bomb/j2k_frames.dcm",
           _bomb_j2k_frames, with_pixels="too large", pixels=PIXEL_SIZE)
dicom_case("decompression bomb, JPEG 2000: one 65535 x 65535 frame", "bomb/j2k_one.dcm",
           _bomb_j2k_one_frame, with_pixels="too large", pixels=PIXEL_SIZE)
dicom_case("unknown transfer syntax", "syntax/unknown.dcm", _unknown_syntax,
           with_pixels="No pixel data decoders", pixels=PIXEL_SIZE)
for _label, _syntax in VIDEO_SYNTAXES.items():
    dicom_case(f"video, {_label}", f"video/{_label}.dcm",
               lambda ds, s=_syntax: encapsulated(ds, s, b"\x00\x00\x01\xb3" + bytes(60)),
               with_pixels="No pixel data decoders", pixels=PIXEL_SIZE)
dicom_case("deflated data set, corrupt stream", "syntax/deflated_corrupt.dcm", _corrupt_deflate,
           expected="corrupt")

# --- character sets, with the patient's name in them ----------------------------------------


def _charset(charset: str | list[str]) -> Callable[[Dataset], None]:
    def edit(ds: Dataset) -> None:
        ds.SpecificCharacterSet = charset
    return edit


def _unknown_charset(ds: Dataset) -> bytes:
    data = encode(ds)
    start, _ = short_value(data, 0x00080005, "CS")
    return data[:start] + b"ISO_IR 999" + data[start + 10:]  # in place of "ISO_IR 100"


def _latin1_declared_utf8(ds: Dataset) -> bytes:
    """Latin-1 text under a UTF-8 declaration, as a system that changed its default writes it:
    every "ø" is a byte that is not UTF-8."""
    data = encode(ds)
    start, _ = short_value(data, 0x00080005, "CS")
    return data[:start] + b"ISO_IR 192" + data[start + 10:]  # in place of "ISO_IR 100"


dicom_case("ISO_IR 192 (UTF-8)", "charset/utf8.dcm", _charset("ISO_IR 192"),
           patient_name=UTF8_NAME)
dicom_case("GB18030", "charset/gb18030.dcm", _charset("GB18030"), patient_name=CHINESE_NAME)
dicom_case("ISO 2022 IR 87 (Japanese)", "charset/japanese.dcm", _charset(["", "ISO 2022 IR 87"]),
           patient_name=JAPANESE_NAME)
dicom_case("unknown character set", "charset/unknown.dcm", _unknown_charset)
dicom_case("UTF-8 declared, Latin-1 written", "charset/invalid_utf8.dcm", _latin1_declared_utf8,
           patient_name=LATIN1_NAME)

# --- odd elements ------------------------------------------------------------------------------


def _name_as_un(ds: Dataset) -> bytes:
    """Patient's Name written with VR UN, as a converter that lost the dictionary writes it."""
    data = encode(ds)
    at = element_offset(data, 0x00100010, "PN")
    start, length = short_value(data, 0x00100010, "PN")
    return data[:at + 4] + b"UN\0\0" + struct.pack("<I", length) + data[start:]


def _uids_with_path_characters(ds: Dataset) -> None:
    ds.SeriesInstanceUID = "../../../../tmp/escaped"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "/etc/passwd"


dicom_case("Patient's Name with VR UN", "odd/name_un.dcm", _name_as_un)
dicom_case("UIDs with path characters", "odd/uid_path.dcm", _uids_with_path_characters)

# --- file names holding PHI and odd characters -------------------------------------------------


PHI_FILE_NAME = "names/GRAVENHURST OPHELIA 19451216 MRN-5521.dcm"


@case("file name holding PHI, with spaces", {PHI_FILE_NAME: DEIDENTIFIED})
def _name_with_phi(w: Writer) -> tuple[str, ...]:
    w.put(PHI_FILE_NAME, encode(image(w.who)))
    return (*w.who.phi, "GRAVENHURST", "OPHELIA", "19451216", "MRN-5521")


dicom_case("file name with unicode", "names/Zoë Ødegård – CT ✓.dcm", patient_name=UTF8_NAME)


@case("file name with a newline and a tab", {"names/two\nlines\tMRN-5522.dcm": DEIDENTIFIED},
      possible=allows_newlines)
def _newline_name(w: Writer) -> tuple[str, ...]:
    w.put("names/two\nlines\tMRN-5522.dcm", encode(image(w.who)))
    return (*w.who.phi, "MRN-5522")


@case("not DICOM, named with a newline and a tab",
      {"names/junk\nMRN-5523\t.bin": "not a DICOM file"}, possible=allows_newlines)
def _newline_junk(w: Writer) -> tuple[str, ...]:
    w.put("names/junk\nMRN-5523\t.bin", b"junk" * 10)
    return ("MRN-5523",)

def allows_undecodable_names(root: Path) -> bool:
    probe = os.path.join(os.fsencode(root), b"probe\xff")
    try:
        open(probe, "wb").close()
    except OSError:
        return False
    os.unlink(probe)
    return True


# Listed with the byte escaped: names are text in every table.
@case("file name that is not UTF-8", {"names/latin1-\\xd8DEGARD.dcm": DEIDENTIFIED,
                                      "names/latin1-\\xd8DEGARD.bin": "not a DICOM"},
      possible=allows_undecodable_names)
def _undecodable_name(w: Writer) -> tuple[str, ...]:
    w.put(os.fsdecode(b"names/latin1-\xd8DEGARD.dcm"), encode(image(w.who)))
    w.put(os.fsdecode(b"names/latin1-\xd8DEGARD.bin"), b"junk" * 10)
    return w.who.phi

# --- the same instance twice -------------------------------------------------------------------


@case("duplicate SOP Instance UIDs", {"dup/a_first.dcm": DEIDENTIFIED,
                                      "dup/b_same_uid.dcm": "duplicate SOP Instance UID",
                                      "dup/c_exact_copy.dcm": "duplicate SOP Instance UID"})
def _duplicates(w: Writer) -> tuple[str, ...]:
    first = encode(image(w.who))
    w.put("dup/a_first.dcm", first)
    changed = image(w.who)
    changed.SeriesDescription = "ANOTHER SERIES"
    w.put("dup/b_same_uid.dcm", encode(changed))
    w.put("dup/c_exact_copy.dcm", first)
    return w.who.phi

# --- links and modes ---------------------------------------------------------------------------


@case("symbolic link to a file inside the drop", {
    "links/target.dcm": DEIDENTIFIED, "links/z_inside.dcm": "duplicate SOP Instance UID"})
def _link_inside(w: Writer) -> tuple[str, ...]:
    w.put("links/target.dcm", encode(image(w.who)))
    (w.root / "links" / "z_inside.dcm").symlink_to("target.dcm")
    return w.who.phi


@case("symbolic link leading outside the drop",
      {"links/outside.dcm": "symbolic link leading outside the input folder"})
def _link_outside(w: Writer) -> tuple[str, ...]:
    w.outside.mkdir(parents=True, exist_ok=True)
    target = w.outside / "elsewhere.dcm"
    target.write_bytes(encode(image(w.who)))
    (w.root / "links").mkdir(exist_ok=True)
    (w.root / "links" / "outside.dcm").symlink_to(target)
    return w.who.phi


@case("dangling symbolic link", {"links/dangling.dcm": "dangling symbolic link"})
def _link_dangling(w: Writer) -> tuple[str, ...]:
    (w.root / "links").mkdir(exist_ok=True)
    (w.root / "links" / "dangling.dcm").symlink_to(w.root / "links" / "gone.dcm")
    return ()


@case("symbolic link to a folder", {"links/folder": "symbolic link to a folder",
                                    "linked_folder/inside.dcm": DEIDENTIFIED})
def _link_folder(w: Writer) -> tuple[str, ...]:
    w.put("linked_folder/inside.dcm", encode(image(w.who)))
    (w.root / "links").mkdir(exist_ok=True)
    (w.root / "links" / "folder").symlink_to(w.root / "linked_folder", target_is_directory=True)
    return w.who.phi


@case("unreadable file (mode 000)", {"unreadable.dcm": "cannot be read"}, possible=not_root)
def _unreadable(w: Writer) -> tuple[str, ...]:
    w.put("unreadable.dcm", encode(image(w.who))).chmod(0)
    return w.who.phi
