"""Flatten a slide's metadata into rows: every TIFF tag of every page, and every `key = value`
of each page's ImageDescription.

The table is slide-specific, since TIFF has no DICOM tags, VRs or sequences; its columns follow
the DICOM element table where they mean the same:

* `file`: the path relative to the drop folder;
* `page`: the TIFF page (IFD) index; `image`: what the page is — `level0`, `thumbnail`,
  `level1`, …, `label`, `macro`, `other`;
* `source`: `tiff` for a tag, `description` for an ImageDescription field (`header` names the
  text before the first `|`: software, sizes, compression);
* `tag`: the TIFF tag code (None for description fields); `name`: tag name or key;
* `value`: the value as text; None for binary values, for where the tiles and strips lie (data
  layout, not metadata) and for other long arrays; `length`: characters, bytes or items.

Per-level sizes, tile sizes and compression are the ImageWidth, ImageLength, TileWidth,
TileLength and Compression rows of each level's page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

import pandas as pd

from deid_pipeline.core.slides.aperio import Description, open_aperio
from deid_pipeline.core.slides.tiff_directory import TiffPage, TiffTag

SLIDE_METADATA_COLUMNS = ("file", "page", "image", "source", "tag", "name", "value", "length")
MAX_LISTED_ITEMS = 16  # longer arrays are recorded by their length only
DATA_LAYOUT_TAGS = frozenset({273, 279, 324, 325})  # Strip/Tile Offsets and ByteCounts
RATIONAL_TYPES = frozenset({5, 10})  # RATIONAL, SRATIONAL: (numerator, denominator) pairs
HEADER = "header"


@dataclass(frozen=True)
class SlideRow:
    file: str
    page: int
    image: str
    source: str  # "tiff" | "description"
    tag: int | None
    name: str
    value: str | None
    length: int


def slide_metadata(path: Path, file: str) -> list[SlideRow]:
    """All metadata rows of one slide; raises SlideError for a file that is not an Aperio
    slide."""
    with open_aperio(path) as slide:
        rows = []
        for index, ((page, _), image) in enumerate(zip(slide.pages, slide.page_names(),
                                                        strict=True)):
            rows.extend(_tag_rows(page, file, index, image))
            rows.extend(_description_rows(page.description, file, index, image))
        return rows


def slide_metadata_frame(rows: list[SlideRow]) -> pd.DataFrame:
    return pd.DataFrame([asdict(row) for row in rows], columns=list(SLIDE_METADATA_COLUMNS))


def _tag_rows(page: TiffPage, file: str, index: int, image: str) -> Iterator[SlideRow]:
    for tag in page.tags:
        value, length = _tag_text(tag)
        yield SlideRow(file, index, image, "tiff", tag.code, tag.name, value, length)


def _description_rows(text: str, file: str, index: int, image: str) -> Iterator[SlideRow]:
    description = Description.parse(text)
    yield SlideRow(file, index, image, "description", None, HEADER, description.header,
                   len(description.header))
    for key, value in description.fields:
        yield SlideRow(file, index, image, "description", None, key, value, len(value))


def _tag_text(tag: TiffTag) -> tuple[str | None, int]:
    if tag.code in DATA_LAYOUT_TAGS:  # never read: a large slide's tables are megabytes
        return None, tag.count
    value = tag.value
    if isinstance(value, str):
        return value, len(value)
    if isinstance(value, bytes):
        return None, len(value)
    if isinstance(value, Enum):
        return value.name, 1
    if not isinstance(value, tuple):
        return str(value), 1
    if len(value) > MAX_LISTED_ITEMS:
        return None, len(value)
    if tag.dtype in RATIONAL_TYPES:
        pairs = zip(value[::2], value[1::2], strict=True)
        return ",".join(f"{numerator}/{denominator}" for numerator, denominator in pairs), tag.count
    return ",".join(str(item) for item in value), len(value)
