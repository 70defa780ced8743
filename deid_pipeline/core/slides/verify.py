"""Check a de-identified slide against its original: as a viewer sees it (OpenSlide: vendor,
levels, pixels, associated images, properties) and as a TIFF reader does (every tag of every
page). Problems are described by key and tag names, never by values.

Each slide is opened in OpenSlide on its own, the original's regions kept as digests, so that
its tile tables (libtiff's) are never held for both slides at once; the TIFF side is read with
core.slides.tiff_directory, tile tables a part at a time: nothing here grows with the tiles."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openslide
from tifffile import TIFF

from deid_pipeline.core.policy.rules import SlideSettings
from deid_pipeline.core.slides.aperio import (
    APERIO_VENDOR,
    PIXEL_TAGS,
    Description,
    PageKind,
    page_kind,
    technical_header,
    tile_sizes_digest,
)
from deid_pipeline.core.slides.tiff_directory import ASCII, TiffFormatError, TiffReader

REGION_SIDE = 512
# Where the compared regions sit, as fractions of the room a region has in each direction: the
# corners (partial edge tiles), the middle, and a spot off the tile grid.
REGION_PLACES = ((0.0, 0.0), (1.0, 1.0), (0.5, 0.5), (0.31, 0.73))
# Shorter identifying values (a rack or slot number) turn up in any text by chance.
MIN_SEARCHED_LENGTH = 4
DESCRIPTION_TAG = 270

# level, (x, y) in the level, the same at level 0 (where OpenSlide reads it), size
Region = tuple[int, tuple[int, int], tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class _View:
    """What a viewer sees of a slide, with its pixels as digests: taken from one slide at a
    time, so that OpenSlide never holds the two slides' tile tables at once."""

    properties: dict[str, str]
    level_dimensions: tuple[tuple[int, int], ...]
    associated: frozenset[str]
    thumbnail: bytes | None
    regions: dict[Region, bytes]


def verify_slide(original: Path, output: Path, settings: SlideSettings,
                 label_mode: str | None = None) -> list[str]:
    """Everything wrong with `output` as the de-identified copy of `original`; empty if none."""
    label_mode = label_mode or settings.label
    source = _view(original, None)
    if source is None:
        return ["the original does not open in OpenSlide"]
    result = _view(output, list(source.regions))
    if result is None:
        return ["the output does not open in OpenSlide"]
    problems = [*_pyramid_problems(source, result),
                *_associated_image_problems(source, result, label_mode,
                                            _page_kinds(Path(original))),
                *_property_problems(source, result, settings)]
    return problems + list(_tiff_problems(Path(original), Path(output), settings))


def _view(path: Path, regions: list[Region] | None) -> _View | None:
    """The view of the slide at `path`, with the digests of `regions` (by default the compared
    regions of its own levels); None if OpenSlide cannot open it."""
    try:
        slide = openslide.OpenSlide(path)
    except openslide.OpenSlideError:
        return None
    # Each region is read once: a tile cache would only hold memory (by default 32 MiB a slide).
    slide.set_cache(openslide.OpenSlideCache(0))
    with slide:
        dimensions = tuple(tuple(size) for size in slide.level_dimensions)
        if regions is None:
            regions = _compared_regions(dimensions, slide.level_downsamples)
        digests = {}
        for region in regions:
            level, _, location, size = region
            if level < len(dimensions):
                digests[region] = _digest(slide.read_region(location, level, size))
        associated = frozenset(slide.associated_images)
        thumbnail = (_digest(slide.associated_images["thumbnail"])
                     if "thumbnail" in associated else None)
        return _View(dict(slide.properties), dimensions, associated, thumbnail, digests)


def _compared_regions(dimensions: tuple[tuple[int, int], ...],
                      downsamples: tuple[float, ...]) -> list[Region]:
    regions = []
    for level, ((width, height), downsample) in enumerate(zip(dimensions, downsamples,
                                                              strict=True)):
        size = (min(REGION_SIDE, width), min(REGION_SIDE, height))
        for fx, fy in REGION_PLACES:
            x, y = int(fx * (width - size[0])), int(fy * (height - size[1]))
            regions.append((level, (x, y), (int(x * downsample), int(y * downsample)), size))
    return regions


def _digest(image) -> bytes:
    return hashlib.sha256(image.tobytes()).digest()


def _pyramid_problems(source: _View, result: _View) -> list[str]:
    if result.properties.get(openslide.PROPERTY_NAME_VENDOR) != APERIO_VENDOR:
        return ["the output does not open as an Aperio slide"]
    if result.level_dimensions != source.level_dimensions:
        return [f"levels differ: {result.level_dimensions} instead of {source.level_dimensions}"]
    problems = []
    for region, digest in source.regions.items():
        if result.regions.get(region) != digest:
            level, (x, y), _, _ = region
            problems.append(f"level {level}: the region at {x},{y} differs")
    return problems


def _page_kinds(original: Path) -> set[PageKind]:
    """The kinds of the original's pages, as the de-identifier tells them: OpenSlide calls a
    label in the thumbnail's place a thumbnail."""
    try:
        with TiffReader(original) as tiff:
            return {page_kind(index, page) for index, page in enumerate(tiff.pages)}
    except (TiffFormatError, OSError):
        return set()


def _associated_image_problems(source: _View, result: _View, label_mode: str,
                               kinds: set[PageKind]) -> list[str]:
    expected = {"thumbnail"} & source.associated if PageKind.THUMBNAIL in kinds else set()
    if label_mode == "pseudonym" and PageKind.LABEL in kinds:
        expected.add("label")
    problems = [f"associated image {name} left" for name in sorted(result.associated)
                if name not in expected]
    problems += [f"associated image {name} missing" for name in sorted(expected)
                 if name not in result.associated]
    if "thumbnail" in expected & result.associated and result.thumbnail != source.thumbnail:
        problems.append("the thumbnail differs")
    return problems


def _property_problems(source: _View, result: _View,
                       settings: SlideSettings) -> list[str]:
    """Aperio keys other than the kept, shifted and pseudonymised ones; the last two unchanged;
    TIFF tags that describe no pixels and are not kept."""
    changed = {key.casefold() for key in (*settings.date_keys, settings.patient_key or "")}
    allowed = {key.casefold() for key in settings.keep_keys} | changed
    allowed_tags = {f"tiff.{TIFF.TAGS[code]}" for code in PIXEL_TAGS | settings.keep_tiff_tags}
    problems = []
    for name, value in result.properties.items():
        if name.startswith("aperio."):
            key = name.removeprefix("aperio.")
            if key.casefold() not in allowed:
                problems.append(f"property {name} left")
            elif key.casefold() in changed and value == source.properties.get(name):
                problems.append(f"property {name} unchanged")
        elif name.startswith("tiff.") and name not in allowed_tags:
            problems.append(f"property {name} left")
    return problems


def _tiff_problems(original: Path, output: Path, settings: SlideSettings) -> Iterator[str]:
    """Tags the policy does not allow on any page, identifying values of the original in any
    text tag, and levels whose stored tiles differ in size from the original's."""
    allowed = PIXEL_TAGS | settings.keep_tiff_tags
    try:
        identifying, source_levels = _original_summary(original, settings)
    except (TiffFormatError, OSError):
        yield "the original cannot be read as a TIFF"
        return
    try:
        with TiffReader(output) as result:
            for index, page in enumerate(result.pages):
                for tag in page.tags:
                    if tag.code not in allowed:
                        yield f"page {index}: TIFF tag {tag.name} left"
                    if tag.dtype == ASCII and isinstance(value := tag.value, str):
                        if tag.code == DESCRIPTION_TAG and \
                                technical_header(Description.parse(value).header)[1]:
                            yield f"page {index}: words in the {tag.name} header that do not " \
                                  "describe the image"
                        text = value.casefold()
                        for key in sorted({key for key, value in identifying if value in text}):
                            yield f"page {index}: the original {key} is in {tag.name}"
            result_levels = [tile_sizes_digest(page) for page in result.pages if page.is_tiled]
    except (TiffFormatError, OSError):
        yield "the output cannot be read as a TIFF"
        return
    for level, (before, after) in enumerate(zip(source_levels, result_levels, strict=False)):
        if before != after:
            yield f"level {level}: the stored tiles differ in size from the original's"


def _original_summary(original: Path, settings: SlideSettings) -> tuple[set[tuple[str, str]],
                                                                      list[str]]:
    """The original's identifying values and its levels' tile size digests."""
    with TiffReader(original) as source:
        return (_identifying_values(source, settings),
                [tile_sizes_digest(page) for page in source.pages if page.is_tiled])


def _identifying_values(source: TiffReader, settings: SlideSettings) -> set[tuple[str, str]]:
    """(key, value folded to lower case) of every identifying ImageDescription key of the
    original: listed for removal, a date, or the patient link."""
    keys = {key.casefold() for key in (*settings.remove_keys, *settings.date_keys,
                                       settings.patient_key or "") if key}
    values = set()
    for index, page in enumerate(source.pages):
        if page_kind(index, page) in (PageKind.LEVEL, PageKind.THUMBNAIL):
            for key, value in Description.parse(page.description).fields:
                if key.casefold() in keys and len(value) >= MIN_SEARCHED_LENGTH:
                    values.add((key, value.casefold()))
    return values
