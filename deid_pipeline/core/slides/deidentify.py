"""De-identify an Aperio SVS slide by rewriting its TIFF around the stored tiles.

Pyramid levels and the thumbnail are copied page by page (core.slides.page_copy): their tiles
or strips as stored, a level's back-to-back tiles as one byte range copied in the kernel, and
the tags that describe the pixels (compression, colour space, JPEG tables) as stored, so nothing
is decoded or re-encoded and every level reads back identical, at about the speed of a file
copy. The file is read with our own directory reader (core.slides.tiff_directory), tile tables
as numpy arrays a part at a time, and the copy's tables are written as it goes: memory does not
grow with the slide's tiles.

What changes:
* ImageDescription keys, per the policy's `slides:` section: the patient key becomes the
  patient's pseudonym, date keys move by the patient's keyed offset (the one their DICOM files
  get) or go when no patient is linked, scientific keys stay, every other key goes.
* TIFF tags: only those that describe the pixels and those the policy keeps are written;
  DateTime, Artist, HostComputer, Software, DocumentName and the rest are not.
* The header of each ImageDescription (before its first "|") keeps only the words that say how
  the image is stored (aperio.technical_header): free text there is dropped.
* The macro and any unnamed associated image are dropped; the label is dropped or replaced by a
  generated label that shows only pseudonyms.
* Comments and application segments in the headers of JPEG and JPEG 2000 tiles are blanked
  (core.slides.header_text): the tiles keep their size and their pixels.

A slide links to a patient when the caller passes `patient_id` (say, from a site's mapping of
barcodes to patients), else when its ImageDescription has the policy's `patient_key`.

The output is named by a keyed hash of the scan (`<16 hex digits>.svs`), written to a temporary
file, verified with OpenSlide against the input, and only then renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import tifffile
from tifffile import TIFF

from deid_pipeline.core.atomic import write_staged
from deid_pipeline.core.deid.engine import AuditRow
from deid_pipeline.core.policy.rules import LABEL_MODES, SlideSettings
from deid_pipeline.core.pseudonyms import Pseudonymizer, shift_date
from deid_pipeline.core.slides.aperio import (
    PIXEL_TAGS,
    AperioFile,
    Description,
    PageKind,
    SlideError,
    open_aperio,
    technical_header,
    tile_sizes_digest,
)
from deid_pipeline.core.slides.page_copy import copied_tag, copy_page, pixel_tags
from deid_pipeline.core.slides.tiff_directory import TiffPage, TiffReader
from deid_pipeline.core.slides.tiff_output import Tag, TiffOutput
from deid_pipeline.core.slides.verify import verify_slide

# Beyond this size a classic TIFF's 32-bit offsets may overflow: write BigTIFF. The margin covers
# the directories and a generated label, which the input does not have.
CLASSIC_TIFF_LIMIT = 2**32 - 2**26
APERIO_DATE_FORMAT = "%m/%d/%y"
DESCRIPTION = "ImageDescription"
DESCRIPTION_TAG, ASCII = 270, 2


@dataclass
class SlideResult:
    """What de-identifying one slide did: no original values, only the pseudonym pairs and the
    actions."""

    output: Path
    patient_id: tuple[str, str] | None = None  # (original, pseudonym)
    audit: list[AuditRow] = field(default_factory=list)


@dataclass(frozen=True)
class _Link:
    """The patient a slide belongs to, as the pipeline's keyed pseudonyms see them."""

    original: str
    pseudonym: str
    offset_days: int


def deidentify_slide(src: Path, dst_dir: Path, settings: SlideSettings,
                     pseudonymizer: Pseudonymizer, *, label_mode: str | None = None,
                     patient_id: str | None = None) -> SlideResult:
    """Write the de-identified copy of the slide `src` into `dst_dir`; `settings` is
    `policy.slides`, `label_mode` ("drop" or "pseudonym") overrides its `label`. Raises
    SlideError (reason free of PHI) for a file that is not an Aperio slide or whose output fails
    verification; nothing is then left in `dst_dir`."""
    label_mode = label_mode or settings.label
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {', '.join(sorted(LABEL_MODES))}")
    result, tmp = _write_staged(src, Path(dst_dir), settings, pseudonymizer, label_mode,
                                patient_id)
    try:
        problems = verify_slide(src, tmp, settings, label_mode)
        if problems:
            raise SlideError("the output failed verification: " + "; ".join(problems[:5]))
        os.replace(tmp, result.output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def _write_staged(src: Path, dst_dir: Path, settings: SlideSettings,
                  pseudonymizer: Pseudonymizer, label_mode: str,
                  patient_id: str | None) -> tuple[SlideResult, Path]:
    """The result and its output written to a hidden temporary file beside it. The input is
    closed on return."""
    with open_aperio(src) as slide:
        first = Description.parse(slide.levels[0].description)
        link = _link(patient_id or first.get(settings.patient_key), pseudonymizer)
        name = _slide_pseudonym(slide, pseudonymizer)
        result = SlideResult(output=dst_dir / f"{name}.svs",
                             patient_id=(link.original, link.pseudonym) if link else None)
        label_lines = [f"SLIDE {name}"] + ([f"PATIENT {link.pseudonym}"] if link else [])
        tmp = write_staged(result.output, lambda tmp: _rewrite(
            slide, tmp, settings, link, label_mode, label_lines, result.audit))
    return result, tmp


def _link(original: str | None, pseudonymizer: Pseudonymizer) -> _Link | None:
    if not original or not original.strip():
        return None
    return _Link(original, pseudonymizer.patient_id(original),
                 pseudonymizer.date_offset_days(original))


def _slide_pseudonym(slide: AperioFile, pseudonymizer: Pseudonymizer) -> str:
    """A keyed hash of what makes the scan unique: level 0's description (scanner, file, date,
    time, image ID) and the sizes of its tiles (its pixels). The same scan always gets the same
    name; nobody without the secret can test a guess of the originals against it."""
    level0 = slide.levels[0]
    return pseudonymizer.hash_id(f"{level0.description}\n{tile_sizes_digest(level0)}", "SH")


def _rewrite(slide: AperioFile, tmp: Path, settings: SlideSettings, link: _Link | None,
             label_mode: str, label_lines: list[str], audit: list[AuditRow]) -> None:
    bigtiff = slide.tiff.bigtiff or slide.tiff.size > CLASSIC_TIFF_LIMIT
    source = slide.tiff.fd
    with open(tmp, "r+b") as out:
        output = TiffOutput(out, bigtiff=bigtiff, byteorder=slide.tiff.byteorder)
        labels = []
        for index, (page, kind) in enumerate(slide.pages):
            where = f"page[{index}]"
            if kind in (PageKind.LEVEL, PageKind.THUMBNAIL):
                description = _rewrite_description(page.description, settings, link, where, audit)
                copy_page(output, source, page, [
                    *pixel_tags(source, page), _ascii_tag(DESCRIPTION_TAG, description),
                    *_kept_tags(source, page, settings, where, audit)])
            elif kind is PageKind.LABEL and label_mode == "pseudonym":
                labels.append(page)
                audit.append(AuditRow(where, "page", kind.value, "replaceWithPseudonymLabel",
                                      "policy slides.label pseudonym"))
            else:
                rule = ("policy slides.label drop" if kind is PageKind.LABEL
                        else f"{kind.value} image")
                audit.append(AuditRow(where, "page", kind.value, "delete", rule))
        # After the levels, where OpenSlide looks for a label: one scanned without a thumbnail
        # sits in the thumbnail's place, where it would be shown as the thumbnail.
        for page in labels:
            _write_pseudonym_label(output, page, label_lines)


def _rewrite_description(text: str, settings: SlideSettings, link: _Link | None, where: str,
                         audit: list[AuditRow]) -> str:
    description = Description.parse(text)
    keep = {key.casefold() for key in settings.keep_keys}
    dates = {key.casefold() for key in settings.date_keys}
    listed = {key.casefold() for key in settings.remove_keys}
    patient_key = (settings.patient_key or "").casefold()
    fields = []
    for key, value in description.fields:
        folded = key.casefold()
        if folded == patient_key and link is not None:
            fields.append((key, link.pseudonym))
            action, rule = "patientHashID", "policy slides.patient_key"
        elif folded in dates and link is not None and (moved := _shift_aperio_date(value, link)):
            fields.append((key, moved))
            action, rule = "shiftDateRandomNbOfDays", "policy slides.date_keys"
        elif folded in keep:
            fields.append((key, value))
            action, rule = "keep", "policy slides.keep_keys"
        else:
            action = "delete"
            rule = ("policy slides.remove_keys" if folded in listed
                    else "policy slides.date_keys, no patient link" if folded in dates
                    else "policy slides.patient_key, no patient link" if folded == patient_key
                    else "not in slides.keep_keys")
        audit.append(AuditRow(where, DESCRIPTION, key, action, rule))
    header, dropped = technical_header(description.header)
    if dropped:
        audit.append(AuditRow(where, DESCRIPTION, "header", "clean",
                              "words that do not describe the image"))
    return Description(header, tuple(fields)).text()


def _shift_aperio_date(value: str, link: _Link) -> str | None:
    """An Aperio date (MM/DD/YY) moved by the patient's offset; None when it is no such date."""
    try:
        day = datetime.strptime(value, APERIO_DATE_FORMAT)
        moved = shift_date(day.strftime("%Y%m%d"), link.offset_days)
    except ValueError:
        return None
    return datetime.strptime(moved, "%Y%m%d").strftime(APERIO_DATE_FORMAT)


def _kept_tags(source: int, page: TiffPage, settings: SlideSettings, where: str,
               audit: list[AuditRow]) -> list[Tag]:
    """The page's tags that the policy keeps, as stored; every other tag that describes no
    pixels is left out, and audited. Tags that point into the file (SubIFDs, Exif) are never
    kept: what they point at is not copied."""
    kept = []
    for tag in page.tags:
        if tag.code in PIXEL_TAGS:
            continue
        if tag.code in settings.keep_tiff_tags and tag.code not in TIFF.TAG_FILTERED:
            kept.append(copied_tag(source, tag))
            audit.append(AuditRow(where, f"TIFF {tag.code}", tag.name, "keep",
                                  "policy slides.keep_tiff_tags"))
        else:
            audit.append(AuditRow(where, f"TIFF {tag.code}", tag.name, "delete",
                                  "not in slides.keep_tiff_tags"))
    return kept


def _ascii_tag(code: int, text: str) -> Tag:
    value = text.encode() + b"\0"
    return Tag(code, ASCII, len(value), value)


def _write_pseudonym_label(output: TiffOutput, label: TiffPage, lines: list[str]) -> None:
    """Encode the generated label with tifffile into a scratch file, then copy that page like
    any other: one way of writing pages."""
    # Imported here: OpenCV is only needed to draw a label, not to copy a slide.
    from deid_pipeline.core.slides.label import render_label

    height, width = label.shape[:2]
    image = render_label(lines, width=width, height=height)
    software, _ = technical_header(label.description.splitlines()[0])
    with tempfile.NamedTemporaryFile(suffix=".tif") as scratch:
        tifffile.imwrite(scratch, image, photometric="rgb", compression="lzw",
                         subfiletype=label.subfiletype, byteorder=output.byteorder,
                         description=f"{software}\r\nlabel {width}x{height}", metadata=None,
                         software=False)
        scratch.flush()
        with TiffReader(scratch.name) as tiff:
            page = tiff.pages[0]
            copy_page(output, tiff.fd, page, [*pixel_tags(tiff.fd, page),
                                              copied_tag(tiff.fd, page.tags[DESCRIPTION_TAG])])
