"""Check a de-identified slide against its original: as a viewer sees it (OpenSlide: vendor,
levels, pixels, associated images, properties) and as a TIFF reader does (every tag of every
page). Problems are described by key and tag names, never by values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openslide
import tifffile
from tifffile import TIFF

from deid_pipeline.core.policy.rules import SlideSettings
from deid_pipeline.core.slides.aperio import (
    APERIO_VENDOR,
    PIXEL_TAGS,
    Description,
    PageKind,
    page_kind,
    release_tiff_pages,
    tile_sizes_digest,
)

REGION_SIDE = 512
# Where the compared regions sit, as fractions of the room a region has in each direction: the
# corners (partial edge tiles), the middle, and a spot off the tile grid.
REGION_PLACES = ((0.0, 0.0), (1.0, 1.0), (0.5, 0.5), (0.31, 0.73))
# Shorter identifying values (a rack or slot number) turn up in any text by chance.
MIN_SEARCHED_LENGTH = 4


def verify_slide(original: Path, output: Path, settings: SlideSettings,
                 label_mode: str | None = None) -> list[str]:
    """Everything wrong with `output` as the de-identified copy of `original`; empty if none."""
    label_mode = label_mode or settings.label
    try:
        source = openslide.OpenSlide(original)
    except openslide.OpenSlideError:
        return ["the original does not open in OpenSlide"]
    try:
        result = openslide.OpenSlide(output)
    except openslide.OpenSlideError:
        source.close()
        return ["the output does not open in OpenSlide"]
    # Each region is read once: a tile cache would only hold memory (by default 32 MiB a slide).
    no_cache = openslide.OpenSlideCache(0)
    source.set_cache(no_cache)
    result.set_cache(no_cache)
    with source, result:
        problems = [*_pyramid_problems(source, result),
                    *_associated_image_problems(source, result, label_mode),
                    *_property_problems(source, result, settings)]
    return problems + list(_tiff_problems(Path(original), Path(output), settings))


def _pyramid_problems(source: openslide.OpenSlide, result: openslide.OpenSlide) -> list[str]:
    if result.properties.get(openslide.PROPERTY_NAME_VENDOR) != APERIO_VENDOR:
        return ["the output does not open as an Aperio slide"]
    if result.level_dimensions != source.level_dimensions:
        return [f"levels differ: {result.level_dimensions} instead of {source.level_dimensions}"]
    problems = []
    for level, ((width, height), downsample) in enumerate(
            zip(source.level_dimensions, source.level_downsamples, strict=True)):
        size = (min(REGION_SIDE, width), min(REGION_SIDE, height))
        for fx, fy in REGION_PLACES:
            x, y = int(fx * (width - size[0])), int(fy * (height - size[1]))
            location = (int(x * downsample), int(y * downsample))
            if (result.read_region(location, level, size).tobytes()
                    != source.read_region(location, level, size).tobytes()):
                problems.append(f"level {level}: the region at {x},{y} differs")
    return problems


def _associated_image_problems(source: openslide.OpenSlide, result: openslide.OpenSlide,
                               label_mode: str) -> list[str]:
    expected = {"thumbnail"} & set(source.associated_images)
    if label_mode == "pseudonym" and "label" in source.associated_images:
        expected.add("label")
    problems = [f"associated image {name} left" for name in result.associated_images
                if name not in expected]
    problems += [f"associated image {name} missing" for name in sorted(expected)
                 if name not in result.associated_images]
    if "thumbnail" in expected & set(result.associated_images) and (
            result.associated_images["thumbnail"].tobytes()
            != source.associated_images["thumbnail"].tobytes()):
        problems.append("the thumbnail differs")
    return problems


def _property_problems(source: openslide.OpenSlide, result: openslide.OpenSlide,
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
    identifying, source_levels = _original_summary(original, settings)
    release_tiff_pages()
    with tifffile.TiffFile(output) as result:
        for index, page in enumerate(result.pages):
            for tag in page.tags:
                if tag.code not in allowed:
                    yield f"page {index}: TIFF tag {tag.name} left"
                if isinstance(tag.value, str):
                    text = tag.value.casefold()
                    for key in sorted({key for key, value in identifying if value in text}):
                        yield f"page {index}: the original {key} is in {tag.name}"
        result_levels = [tile_sizes_digest(page) for page in result.pages if page.is_tiled]
    for level, (before, after) in enumerate(zip(source_levels, result_levels, strict=False)):
        if before != after:
            yield f"level {level}: the stored tiles differ in size from the original's"


def _original_summary(original: Path, settings: SlideSettings) -> tuple[set[tuple[str, str]],
                                                                      list[str]]:
    """The original's identifying values and its levels' tile size digests: a function of its
    own, so that nothing refers to the original's pages once it returns."""
    with tifffile.TiffFile(original) as source:
        return (_identifying_values(source, settings),
                [tile_sizes_digest(page) for page in source.pages if page.is_tiled])


def _identifying_values(source: tifffile.TiffFile, settings: SlideSettings) -> set[tuple[str, str]]:
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
