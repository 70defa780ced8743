"""De-identify an Aperio SVS slide by rewriting its TIFF around the stored tiles.

Pyramid levels and the thumbnail are copied page by page: each tile or strip is read as stored
and handed to tifffile's writer as bytes, with the page's compression, colour space and JPEG
tables, so nothing is decoded or re-encoded and every level reads back identical. Tiles stream
from input to output a few megabytes at a time, whatever the slide's size.

What changes:
* ImageDescription keys, per the policy's `slides:` section: the patient key becomes the
  patient's pseudonym, date keys move by the patient's keyed offset (the one their DICOM files
  get) or go when no patient is linked, scientific keys stay, every other key goes.
* TIFF tags: only those that describe the pixels and those the policy keeps are written;
  DateTime, Artist, HostComputer, Software, DocumentName and the rest are not.
* The macro and any unnamed associated image are dropped; the label is dropped or replaced by a
  generated label that shows only pseudonyms.

A slide links to a patient when the caller passes `patient_id` (say, from a site's mapping of
barcodes to patients), else when its ImageDescription has the policy's `patient_key`.

The output is named by a keyed hash of the scan (`<16 hex digits>.svs`), written to a temporary
file, verified with OpenSlide against the input, and only then renamed into place.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import tifffile
from tifffile import COMPRESSION, TIFF

from deid_pipeline.core.atomic import write_atomically
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
    tile_sizes_digest,
)
from deid_pipeline.core.slides.label import render_label
from deid_pipeline.core.slides.verify import verify_slide

READ_BUFFER = 4 * 2**20  # bytes of tiles read from the input per pass
TABLE_SLICE = 4096  # tiles handed to tifffile's reader per call
WRITE_BUFFER = 4 * 2**20
# Beyond this size a classic TIFF's 32-bit offsets may overflow: write BigTIFF. The margin covers
# the directories and a generated label, which the input does not have.
CLASSIC_TIFF_LIMIT = 2**32 - 2**26
APERIO_DATE_FORMAT = "%m/%d/%y"
DESCRIPTION = "ImageDescription"


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
    with open_aperio(src) as slide:
        first = Description.parse(slide.levels[0].description)
        link = _link(patient_id or first.get(settings.patient_key), pseudonymizer)
        name = _slide_pseudonym(slide, pseudonymizer)
        result = SlideResult(output=Path(dst_dir) / f"{name}.svs",
                             patient_id=(link.original, link.pseudonym) if link else None)
        label_lines = [f"SLIDE {name}"] + ([f"PATIENT {link.pseudonym}"] if link else [])

        def write(tmp: Path) -> None:
            _rewrite(slide, tmp, settings, link, label_mode, label_lines, result.audit)
            problems = verify_slide(src, tmp, settings, label_mode)
            if problems:
                raise SlideError("the output failed verification: " + "; ".join(problems[:5]))

        write_atomically(result.output, write)
    return result


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
    bigtiff = slide.tif.is_bigtiff or slide.tif.filehandle.size > CLASSIC_TIFF_LIMIT
    # A large buffer turns one small write per tile into few large ones.
    with open(tmp, "wb", buffering=WRITE_BUFFER) as out, \
            tifffile.TiffWriter(out, bigtiff=bigtiff, byteorder=slide.tif.byteorder) as writer:
        for index, (page, kind) in enumerate(slide.pages):
            where = f"page[{index}]"
            if kind in (PageKind.LEVEL, PageKind.THUMBNAIL):
                description = _rewrite_description(page.description, settings, link, where, audit)
                _copy_page(writer, slide.tif.filehandle, page, description,
                           _kept_tags(page, settings, where, audit))
            elif kind is PageKind.LABEL and label_mode == "pseudonym":
                _write_pseudonym_label(writer, page, label_lines)
                audit.append(AuditRow(where, "page", kind.value, "replaceWithPseudonymLabel",
                                      "policy slides.label pseudonym"))
            else:
                rule = ("policy slides.label drop" if kind is PageKind.LABEL
                        else f"{kind.value} image")
                audit.append(AuditRow(where, "page", kind.value, "delete", rule))


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
    return Description(description.header, tuple(fields)).text()


def _shift_aperio_date(value: str, link: _Link) -> str | None:
    """An Aperio date (MM/DD/YY) moved by the patient's offset; None when it is no such date."""
    try:
        day = datetime.strptime(value, APERIO_DATE_FORMAT)
        moved = shift_date(day.strftime("%Y%m%d"), link.offset_days)
    except ValueError:
        return None
    return datetime.strptime(moved, "%Y%m%d").strftime(APERIO_DATE_FORMAT)


def _kept_tags(page: tifffile.TiffPage, settings: SlideSettings, where: str,
               audit: list[AuditRow]) -> list[tuple]:
    """The page's tags that the policy keeps and the writer does not make itself, as extratags;
    every other tag that describes no pixels is left out, and audited."""
    kept = []
    for tag in page.tags:
        if tag.code in PIXEL_TAGS:
            continue
        if tag.code in settings.keep_tiff_tags and tag.code not in TIFF.TAG_FILTERED:
            kept.append((tag.code, tag.dtype, tag.count, tag.value, True))
            audit.append(AuditRow(where, f"TIFF {tag.code}", tag.name, "keep",
                                  "policy slides.keep_tiff_tags"))
        else:
            audit.append(AuditRow(where, f"TIFF {tag.code}", tag.name, "delete",
                                  "not in slides.keep_tiff_tags"))
    return kept


def _copy_page(writer: tifffile.TiffWriter, fh: tifffile.FileHandle, page: tifffile.TiffPage,
               description: str, extratags: list[tuple]) -> None:
    """Write `page` again with its tiles or strips exactly as stored."""
    jpeg = page.compression == COMPRESSION.JPEG
    resolution = page.tags.valueof(282), page.tags.valueof(283)
    writer.write(
        _stored_segments(fh, page),
        shape=page.shape, dtype=page.dtype, photometric=page.photometric,
        planarconfig=page.planarconfig, bitspersample=page.bitspersample,
        tile=(page.tilelength, page.tilewidth) if page.is_tiled else None,
        rowsperstrip=None if page.is_tiled else page.rowsperstrip,
        compression=page.compression, predictor=page.predictor, jpegtables=page.jpegtables,
        # For JPEG, tifffile's writer otherwise declares the YCbCr it would encode to.
        subsampling=page.subsampling if jpeg else None,
        compressionargs={"outcolorspace": page.photometric} if jpeg else None,
        resolution=resolution if None not in resolution else None,
        resolutionunit=page.tags.valueof(296), subfiletype=page.subfiletype,
        description=description, metadata=None, software=False, extratags=extratags,
    )


def _stored_segments(fh: tifffile.FileHandle, page: tifffile.TiffPage) -> Iterator[bytes]:
    """The page's tiles or strips as stored, in index order, a buffer's worth read at a time.
    A thread reads the next buffer while this one is written, so that reading and writing
    overlap as they do in a plain copy; at most two buffers are held."""
    with ThreadPoolExecutor(1) as reader:
        batches = _batches(fh, page)
        upcoming = reader.submit(next, batches, None)
        while (batch := upcoming.result()) is not None:
            upcoming = reader.submit(next, batches, None)
            for segment, _ in batch:
                yield segment or b""  # an empty (sparse) tile stays empty


def _batches(fh: tifffile.FileHandle, page: tifffile.TiffPage) -> Iterator[list]:
    """Lists of (segment, index), READ_BUFFER bytes each. tifffile's reader is handed a slice of
    the tile table at a time, so that its bookkeeping stays small on the largest slides."""
    offsets, counts = page.dataoffsets, page.databytecounts
    for start in range(0, len(offsets), TABLE_SLICE):
        stop = min(start + TABLE_SLICE, len(offsets))
        yield from fh.read_segments(offsets[start:stop], counts[start:stop],
                                    range(start, stop), sort=False, buffersize=READ_BUFFER,
                                    flat=False)


def _write_pseudonym_label(writer: tifffile.TiffWriter, label: tifffile.TiffPage,
                           lines: list[str]) -> None:
    height, width = label.shape[:2]
    image = render_label(lines, width=width, height=height)
    software = label.description.splitlines()[0]
    writer.write(image, photometric="rgb", compression="lzw", subfiletype=label.subfiletype,
                 description=f"{software}\r\nlabel {width}x{height}", metadata=None,
                 software=False)

