"""Copy a TIFF page into a TiffOutput: its tiles or strips as stored, a window of the file at a
time, then its directory.

Each window's bytes are copied in the kernel (copy_file_range); the text segments in the headers
of its JPEG or JPEG 2000 tiles are then blanked in the output through a memory map of just that
window, still in the page cache where the copy left it. Memory is one window plus the page's
tile tables as numpy arrays, however large the slide.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

import numpy as np
import tifffile

from deid_pipeline.core.slides.aperio import PIXEL_TAGS, SlideError
from deid_pipeline.core.slides.header_text import (
    JPEG,
    SYNTAX_OF_COMPRESSION,
    Syntax,
    blank_header_text,
)
from deid_pipeline.core.slides.tiff_output import Tag, TiffOutput, copy_range
from deid_pipeline.core.slides.tile_runs import TileRuns

WINDOW = 8 * 2**20  # bytes of a page copied, then scanned, at a time
COPY_AHEAD = 4  # windows: 32 MiB the copy may run ahead of the scan
JPEG_TABLES = 347
# Where the data lie, written anew for the copy: (Tile or Strip) Offsets and ByteCounts, by
# whether the page is tiled.
LAYOUT_TAGS = {True: (324, 325), False: (273, 279)}
NOT_COPIED = frozenset({270, 273, 279, 324, 325})  # the layout, and ImageDescription (the caller's)


def copied_tag(source: int, tag: tifffile.TiffTag) -> Tag:
    """`tag` of the file `source` with its value as stored (so in that file's byte order)."""
    value = os.pread(source, tag.valuebytecount, tag.valueoffset)
    if len(value) != tag.valuebytecount:
        raise SlideError(f"the value of TIFF tag {tag.name} lies past the end of the file")
    return Tag(tag.code, tag.dtype, tag.count, value)


def pixel_tags(source: int, page: tifffile.TiffPage) -> list[Tag]:
    """The page's tags that describe its pixels, as stored, but for the data layout (the copy
    writes its own) and ImageDescription; text in the JPEG tables blanked as in the tiles."""
    tags = [copied_tag(source, tag) for tag in page.tags
            if tag.code in PIXEL_TAGS - NOT_COPIED]
    return [_blank_table_text(tag) if tag.code == JPEG_TABLES else tag for tag in tags]


def copy_page(output: TiffOutput, source: int, page: tifffile.TiffPage,
              tags: list[Tag]) -> None:
    """Append `page` of the file `source` to `output`: its data as stored, then a directory of
    `tags` and the data layout. `tags` must not hold the layout tags."""
    counts = np.asarray(page.databytecounts, np.int64)
    runs = TileRuns.of(np.asarray(page.dataoffsets, np.int64), counts)
    targets = runs.packed_targets(output.reserve(runs.size))
    syntax = SYNTAX_OF_COMPRESSION.get(page.compression)
    moved = np.zeros(len(counts), np.int64)  # where each tile lands; 0 for none
    copy = partial(_copy_window, output, source, runs, targets)
    for first, stop in _copied(runs.windows(WINDOW), copy):
        landed = runs.landing(first, stop, targets)
        moved[runs.order[first:stop]] = landed
        if syntax is not None:
            _blank_window_text(output, landed, runs.counts[runs.order[first:stop]], syntax)
    if not output.bigtiff and moved.max(initial=0) >= 2**32:
        raise SlideError("the copy outgrew a classic TIFF's 32-bit offsets")
    offsets_code, counts_code = LAYOUT_TAGS[page.is_tiled]
    output.append_ifd([*tags, _table_tag(output, offsets_code, moved),
                       _table_tag(output, counts_code, counts)])


def _table_tag(output: TiffOutput, code: int, values: np.ndarray) -> Tag:
    """A tile offsets or byte counts tag, as wide as the output's offsets."""
    table = np.dtype(output.byteorder + ("u8" if output.bigtiff else "u4"))
    encoded = values.astype(table, copy=False)
    return Tag(code, output.offset_type, len(values), memoryview(encoded).cast("B"))


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
