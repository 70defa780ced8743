"""The structure of an Aperio SVS file: which page is which, and its ImageDescription's keys.

An SVS file is a tiled, pyramidal TIFF. The tiled pages are the pyramid levels, level 0 first;
stripped pages are associated images named by the first word of their description's second line
(`label`, `macro`), and the stripped page right after level 0, unless so named, is the thumbnail.
OpenSlide takes that page for the thumbnail whatever its name: a slide scanned without one has
its label there, which must not pass for a thumbnail (and be copied).

The file is read with core.slides.tiff_directory: directories as entries, tile tables as numpy
arrays a part at a time, so that what a slide takes in memory does not grow with its tiles.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import openslide

from deid_pipeline.core.slides.tiff_directory import (
    TiffFormatError,
    TiffPage,
    TiffReader,
    TruncatedError,
)

APERIO_VENDOR = "aperio"

# Tags that TiffWriter writes from a page's layout: they describe the pixels, name nobody, and
# are regenerated rather than copied. ImageDescription (270) is rewritten key by key.
PIXEL_TAGS = frozenset({
    254,  # NewSubfileType
    256, 257,  # ImageWidth, ImageLength
    258, 259, 262,  # BitsPerSample, Compression, PhotometricInterpretation
    270,  # ImageDescription
    273, 277, 278, 279,  # StripOffsets, SamplesPerPixel, RowsPerStrip, StripByteCounts
    282, 283, 284, 296,  # XResolution, YResolution, PlanarConfiguration, ResolutionUnit
    317,  # Predictor
    322, 323, 324, 325,  # TileWidth, TileLength, TileOffsets, TileByteCounts
    338, 339,  # ExtraSamples, SampleFormat
    347,  # JPEGTables
    530, 532,  # YCbCrSubSampling, ReferenceBlackWhite
})


# The words of an ImageDescription's header (before its first "|") that say how the image is
# stored: software and version, sizes, regions, tile size, compression and quality. A scanner or
# a site may write anything there; every other word is dropped.
HEADER_WORD = re.compile(r"""(?:
    Aperio | Image | Library | Leica | Biosystems | label | macro
    | v[0-9][0-9A-Za-z._-]* | vFS[0-9]+                    # a version
    | \[?[0-9]+,[0-9]+ | [0-9]+x[0-9]+\]? | \([0-9]+x[0-9]+\)  # sizes, regions, tiles
    | -> | -
    | (?:JPEG|J2K|JP2K|LZW|RAW|NONE)/(?:RGB|YUV16|YCbCr|YCBCR|KDU)
    | [QR]=[0-9]+
)[;]?""", re.VERBOSE)


def technical_header(header: str) -> tuple[str, int]:
    """The header with only its HEADER_WORDs, line by line, and how many words went."""
    lines, dropped = [], 0
    for line in re.split(r"(\r?\n)", header):
        if line in ("\n", "\r\n"):
            lines.append(line)
            continue
        words = line.split()
        kept = [word for word in words if HEADER_WORD.fullmatch(word)]
        dropped += len(words) - len(kept)
        lines.append(" ".join(kept) + (" " if kept and line.endswith(" ") else ""))
    return "".join(lines), dropped


class SlideError(Exception):
    """A file that cannot be de-identified as a slide; the message is the reason, free of PHI."""


class PageKind(str, Enum):
    LEVEL = "level"
    THUMBNAIL = "thumbnail"
    LABEL = "label"
    MACRO = "macro"
    OTHER = "other"  # an associated image of no known name: never copied, it may show anything


@dataclass(frozen=True)
class Description:
    """An Aperio ImageDescription: a header (software, sizes, compression), then `key = value`
    fields after each `|`."""

    header: str
    fields: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Description:
        header, *fields = text.split("|")
        pairs = []
        for field in fields:
            key, _, value = field.partition("=")
            pairs.append((key.strip(), value.strip()))
        return cls(header, tuple(pairs))

    def get(self, key: str | None) -> str | None:
        """The value of `key` (any case), or None."""
        if key is None:
            return None
        wanted = key.casefold()
        return next((value for name, value in self.fields if name.casefold() == wanted), None)

    def text(self) -> str:
        return "|".join([self.header, *(f"{key} = {value}" for key, value in self.fields)])


@dataclass(frozen=True)
class AperioFile:
    tiff: TiffReader
    pages: tuple[tuple[TiffPage, PageKind], ...]

    @property
    def levels(self) -> list[TiffPage]:
        return [page for page, kind in self.pages if kind is PageKind.LEVEL]

    def page_names(self) -> list[str]:
        """`level0`, `thumbnail`, `level1`, …, `label`, `macro`: one name per page."""
        names, level = [], 0
        for _, kind in self.pages:
            if kind is PageKind.LEVEL:
                names.append(f"level{level}")
                level += 1
            else:
                names.append(kind.value)
        return names


def tile_sizes_digest(page: TiffPage) -> str:
    """A digest of the sizes of a page's stored tiles or strips: equal for two pages that hold
    the same compressed data, and small however many tiles there are (read a part at a time)."""
    digest = hashlib.sha256()
    for _, _, counts in page.table_parts():
        digest.update(counts.astype(np.uint64).tobytes())
    return digest.hexdigest()


def page_kind(index: int, page: TiffPage) -> PageKind:
    if page.is_tiled:
        return PageKind.LEVEL
    lines = page.description.splitlines()
    name = lines[1].split(maxsplit=1)[0] if len(lines) > 1 and lines[1].strip() else ""
    named = {"label": PageKind.LABEL, "macro": PageKind.MACRO}.get(name)
    if named is None and index == 1:
        return PageKind.THUMBNAIL
    return named or PageKind.OTHER


@contextmanager
def open_aperio(path: Path) -> Iterator[AperioFile]:
    """The slide's pages, checked: a readable TIFF, tiled, from Aperio, with every tile inside
    the file. Raises SlideError with the reason otherwise."""
    path = Path(path)
    try:
        tiff = TiffReader(path)
    except TruncatedError:
        raise SlideError(TRUNCATED) from None
    except TiffFormatError:
        raise SlideError("not a TIFF file") from None
    except OSError as exc:
        raise SlideError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    with tiff:
        pages = tiff.pages
        try:
            if _cut_short(tiff, pages):
                raise SlideError(TRUNCATED)
        except TruncatedError:
            raise SlideError(TRUNCATED) from None
        if not pages or not pages[0].is_tiled:
            raise SlideError("a TIFF that is not a whole-slide image (no tiled pyramid)")
        vendor = openslide.OpenSlide.detect_format(path)
        if vendor != APERIO_VENDOR:
            raise SlideError(f"unsupported slide vendor ({vendor or 'unknown'}); "
                             "only Aperio SVS is supported")
        yield AperioFile(tiff, tuple((page, page_kind(i, page)) for i, page in enumerate(pages)))


TRUNCATED = "truncated file: its images run past the end of the file"


def _cut_short(tiff: TiffReader, pages: list[TiffPage]) -> bool:
    """Whether the file ends before its data: a page's tiles or strips past the end (a
    directory, a value, or a next directory past the end the reader has refused already)."""
    return any(len(offsets) and int((offsets + counts).max()) > tiff.size
               for page in pages for _, offsets, counts in page.table_parts())
