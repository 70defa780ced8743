"""Copy a TIFF page into a TiffOutput: its tiles or strips as stored, a window of the file at a
time, then its directory.

Each window's bytes are copied in the kernel (copy_file_range); the text segments in the headers
of its JPEG or JPEG 2000 tiles are then blanked in the output through a memory map of just that
window, still in the page cache where the copy left it.

The page's tile tables are taken a part at a time (core.slides.tiff_directory), and the copy's
new tables written into room reserved for them before the page's data as each part is done, so
that memory is one window and one part of the tables, however many tiles the slide has. Only a
page whose tiles do not lie in the order of its table (no scanner writes them so) is taken
whole, since its tiles must be sorted by offset to find the runs.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from deid_pipeline.core.slides.aperio import PIXEL_TAGS, SlideError
from deid_pipeline.core.slides.header_text import (
    JPEG,
    SYNTAX_OF_COMPRESSION,
    Syntax,
    blank_header_text,
)
from deid_pipeline.core.slides.tiff_directory import LAYOUT_TAGS
from deid_pipeline.core.slides.tiff_output import Tag, TiffOutput, copy_range
from deid_pipeline.core.slides.tile_runs import TileRuns

WINDOW = 8 * 2**20  # bytes of a page copied, then scanned, at a time
COPY_AHEAD = 4  # windows: 32 MiB the copy may run ahead of the scan
JPEG_TABLES = 347
NOT_COPIED = frozenset({270, 273, 279, 324, 325})  # the layout, and ImageDescription (the caller's)


def copied_tag(source: int, tag: Any) -> Tag:
    """`tag` of the file `source` with its value as stored (so in that file's byte order)."""
    value = os.pread(source, tag.valuebytecount, tag.valueoffset)
    if len(value) != tag.valuebytecount:
        raise SlideError(f"the value of TIFF tag {tag.name} lies past the end of the file")
    return Tag(tag.code, tag.dtype, tag.count, value)


def pixel_tags(source: int, page: Any) -> list[Tag]:
    """The page's tags that describe its pixels, as stored, but for the data layout (the copy
    writes its own) and ImageDescription; text in the JPEG tables blanked as in the tiles."""
    tags = [copied_tag(source, tag) for tag in page.tags
            if tag.code in PIXEL_TAGS - NOT_COPIED]
    return [_blank_table_text(tag) if tag.code == JPEG_TABLES else tag for tag in tags]


def copy_page(output: TiffOutput, source: int, page: Any, tags: list[Tag]) -> None:
    """Append `page` (a core.slides.tiff_directory page, or a tifffile one) of the file `source`
    to `output`: its data as stored, then a directory of `tags` and the data layout. `tags` must
    not hold the layout tags."""
    syntax = SYNTAX_OF_COMPRESSION.get(int(page.compression))
    tables = _NewTables(output, _tile_count(page))
    for first, offsets, counts in _table_parts(page):
        tables.write(first, _copy_tiles(output, source, offsets, counts, syntax), counts)
    output.append_ifd([*tags, *tables.tags(*LAYOUT_TAGS[bool(page.is_tiled)])])


def _copy_tiles(output: TiffOutput, source: int, offsets: np.ndarray, counts: np.ndarray,
                syntax: Syntax | None) -> np.ndarray:
    """Copy the tiles at `offsets` of `counts` bytes (int64) to the end of `output`, blanking
    their header text; return where each landed (0 for a tile of no bytes)."""
    runs = TileRuns.of(offsets, counts)
    targets = runs.packed_targets(output.reserve(runs.size))
    moved = np.zeros(len(counts), np.int64)
    copy = partial(_copy_window, output, source, runs, targets)
    for first, stop in _copied(runs.windows(WINDOW), copy):
        landed = runs.landing(first, stop, targets)
        moved[runs.order[first:stop]] = landed
        if syntax is not None:
            _blank_window_text(output, landed, runs.counts[runs.order[first:stop]], syntax)
    if not output.bigtiff and moved.max(initial=0) >= 2**32:
        raise SlideError("the copy outgrew a classic TIFF's 32-bit offsets")
    return moved


def _tile_count(page: Any) -> int:
    if hasattr(page, "tile_count"):
        return page.tile_count
    if len(page.dataoffsets) != len(page.databytecounts):
        raise SlideError("a page whose tile tables differ in length")
    return len(page.dataoffsets)


def _table_parts(page: Any) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first tile, offsets, byte counts) of the page's tiles, int64: a part at a time where
    the tiles lie in the order of the table (each part's runs are then after the last part's),
    else all at once."""
    if hasattr(page, "table_parts") and _in_table_order(page):
        yield from page.table_parts()
    else:
        yield 0, np.asarray(page.dataoffsets, np.int64), np.asarray(page.databytecounts, np.int64)


def _in_table_order(page: Any) -> bool:
    """Whether the page's tiles that hold bytes lie at offsets that never decrease."""
    last = -1
    for _, offsets, counts in page.table_parts():
        held = offsets[counts > 0]
        if len(held):
            if held[0] < last or (held[1:] < held[:-1]).any():
                return False
            last = int(held[-1])
    return True


class _NewTables:
    """The copy's tile offsets and byte counts, as wide as the output's offsets. Long tables are
    written into the output as each part of the page is copied, into room reserved before the
    page's data; tables short enough for their directory entries are kept until the end."""

    def __init__(self, output: TiffOutput, count: int) -> None:
        self.output, self.count = output, count
        self.dtype = np.dtype(output.byteorder + ("u8" if output.bigtiff else "u4"))
        self.size = count * self.dtype.itemsize
        if self.size <= output.inline_size:
            self.at = None
            self.offsets, self.counts = np.zeros(count, self.dtype), np.zeros(count, self.dtype)
        else:
            self.at = output.reserve(2 * self.size, align=2)

    def write(self, first: int, moved: np.ndarray, counts: np.ndarray) -> None:
        if self.at is None:
            self.offsets[first:first + len(moved)] = moved
            self.counts[first:first + len(counts)] = counts
            return
        where = self.at + first * self.dtype.itemsize
        os.pwrite(self.output.fd, moved.astype(self.dtype), where)
        os.pwrite(self.output.fd, counts.astype(self.dtype), where + self.size)

    def tags(self, offsets_code: int, counts_code: int) -> list[Tag]:
        kind, count = self.output.offset_type, self.count
        if self.at is None:
            return [Tag(offsets_code, kind, count, self.offsets.tobytes()),
                    Tag(counts_code, kind, count, self.counts.tobytes())]
        return [Tag(offsets_code, kind, count, b"", self.at),
                Tag(counts_code, kind, count, b"", self.at + self.size)]


def _copied(windows: Iterator[tuple[int, int]],
            copy: Callable[[tuple[int, int]], tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The `windows`, each once `copy` has copied it. A second thread copies, COPY_AHEAD
    windows ahead of the caller's scan, so that the disk does not wait for the scan and the
    scan finds its window still in the page cache."""
    with ThreadPoolExecutor(1) as copier:
        queued: deque[Future[tuple[int, int]]] = deque()
        for window in windows:
            queued.append(copier.submit(copy, window))
            if len(queued) > COPY_AHEAD:
                yield queued.popleft().result()
        while queued:
            yield queued.popleft().result()


def _copy_window(output: TiffOutput, source: int, runs: TileRuns, targets: np.ndarray,
                 window: tuple[int, int]) -> tuple[int, int]:
    """Copy the bytes of the sorted tiles `first:stop` of `window`, a run (or the part of one
    in the window) at a time; return the window."""
    first, stop = window
    low, high = int(runs.starts[first]), int(runs.ends(first, stop).max())
    for run in np.unique(runs.runs(first, stop)):
        start, end = max(low, int(runs.run_starts[run])), min(high, int(runs.run_ends[run]))
        to = int(targets[run]) + start - int(runs.run_starts[run])
        copy_range(source, start, end - start, output.fd, to)
    return window


def _blank_window_text(output: TiffOutput, starts: np.ndarray, counts: np.ndarray,
                       syntax: Syntax) -> None:
    """Blank the header text of the tiles of `counts` bytes at `starts` in the output."""
    low, high = int(starts.min()), int((starts + counts).max())
    window = np.memmap(output.file, np.uint8, mode="r+", offset=low, shape=(high - low,))
    # A plain view: indexing a memmap costs more than the lookups themselves.
    blank_header_text(window.view(np.ndarray), starts - low, starts + counts - low, syntax)
    del window  # unmapped now: while mapped, its pages count in this process's memory


def _blank_table_text(tables: Tag) -> Tag:
    data = np.frombuffer(bytearray(tables.value), np.uint8)
    blank_header_text(data, np.array([0]), np.array([len(data)]), JPEG)
    return Tag(tables.code, tables.dtype, tables.count, data.tobytes())
