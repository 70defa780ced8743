"""Read the directories (IFDs) of a TIFF or BigTIFF file: their tag entries, and values when
asked for.

tifffile reads a page's tile tables (TileOffsets, TileByteCounts) into tuples of Python ints,
some 80 bytes a tile, and holds them while the file is open: a slide's memory would then grow
with its tile count. Here a directory is its entries only (code, type, count, where the value
lies); a value is read when asked for, and a tile table as numpy arrays in the file's byte order,
a part of `TABLE_PART` tiles at a time (`TiffPage.table_parts`), so that memory stays the same
however many tiles a slide has. tifffile supplies only constants: tag names and enumerations.

Values read with `TiffTag.value` come back as tifffile gives them (text, bytes, a number, an
enumeration, a tuple), so that a table of tags reads the same either way.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tifffile import TIFF

TABLE_PART = 2**18  # tiles of a tile table read, and held, at a time
MAX_TAGS = 4096  # tifffile's limit too: more entries in a directory mean a broken file
MAX_PAGES = 2**16
ASCII, BYTE, UNDEFINED = 2, 1, 7
ITEM_FORMATS = {1: "B", 2: "s", 3: "H", 4: "I", 5: "II", 6: "b", 7: "B", 8: "h", 9: "i",
                10: "ii", 11: "f", 12: "d", 13: "I", 16: "Q", 17: "q", 18: "Q"}
ITEM_SIZES = {dtype: struct.calcsize("<" + form) for dtype, form in ITEM_FORMATS.items()}
# The unsigned integer types a table of offsets or byte counts may have: SHORT, LONG, IFD, LONG8,
# IFD8.
TABLE_TYPES = {3: "u2", 4: "u4", 13: "u4", 16: "u8", 18: "u8"}
# Where a page's data lie: (Tile or Strip) Offsets and ByteCounts, by whether it is tiled.
LAYOUT_TAGS = {True: (324, 325), False: (273, 279)}


class TiffFormatError(Exception):
    """Not a TIFF file, or one whose directories cannot be read."""


class TruncatedError(TiffFormatError):
    """A directory, a value or a page's data lies past the end of the file."""


@dataclass(frozen=True)
class _Layout:
    bigtiff: bool
    entry_count: str  # struct formats, after the byte order
    entry: str
    offset: str
    inline: int  # values of at most this many bytes sit in the entry itself

    @property
    def entry_size(self) -> int:
        return struct.calcsize("<" + self.entry)


_CLASSIC = _Layout(False, "H", "HHI4s", "I", 4)
_BIGTIFF = _Layout(True, "Q", "HHQ8s", "Q", 8)


@dataclass(frozen=True)
class _File:
    """What the pages of a file need of it to read values: no reference back to the pages, so
    that nothing but reference counting is needed to free them."""

    fd: int
    size: int
    byteorder: str  # "<" or ">"

    def read(self, length: int, offset: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise TruncatedError("a value lies past the end of the file")
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise TruncatedError("a value lies past the end of the file")
        return data

    def array(self, dtype: int, count: int, offset: int) -> np.ndarray:
        """`count` unsigned integers of TIFF type `dtype` at `offset`, as int64, read straight
        into the array (no bytes object in between)."""
        stored = np.empty(count, np.dtype(self.byteorder + TABLE_TYPES[dtype]))
        if offset < 0 or offset + stored.nbytes > self.size:
            raise TruncatedError("a tile table lies past the end of the file")
        buffer, done = memoryview(stored).cast("B"), 0
        while done < len(buffer):
            read = os.preadv(self.fd, [buffer[done:]], offset + done)
            if read <= 0:
                raise TruncatedError("a tile table lies past the end of the file")
            done += read
        return stored.astype(np.int64)


@dataclass(frozen=True)
class TiffTag:
    """One directory entry. `valueoffset` is where its value lies in the file, inside the entry
    itself for a short value, so that (`valueoffset`, `valuebytecount`) is always the value as
    stored."""

    code: int
    dtype: int
    count: int
    valueoffset: int
    valuebytecount: int
    file: _File = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return TIFF.TAGS.get(self.code, str(self.code))

    def raw(self) -> bytes:
        """The value as stored, in the file's byte order."""
        return self.file.read(self.valuebytecount, self.valueoffset)

    @property
    def value(self) -> Any:
        """The value, read now, as tifffile gives it: text for ASCII (NULs and blanks at the
        ends stripped), bytes for BYTE and UNDEFINED, else a number, an enumeration or a
        tuple (a flat one for rationals)."""
        raw = self.raw()
        if self.dtype in (BYTE, UNDEFINED) or self.code in TIFF.TAG_READERS:
            return raw
        if self.dtype == ASCII:
            raw = raw.rstrip(b"\0")
            for encoding in ("utf-8", "cp1252"):
                try:
                    return raw.decode(encoding).strip()
                except UnicodeDecodeError:
                    continue
            return raw
        form = ITEM_FORMATS[self.dtype]  # "II" for a rational: two items an entry
        value = struct.unpack(f"{self.file.byteorder}{self.count * len(form)}{form[0]}", raw)
        if self.code in TIFF.TAG_ENUM:
            try:
                value = tuple(TIFF.TAG_ENUM[self.code](item) for item in value)
            except ValueError:
                pass
        if len(value) == 1 and self.code not in TIFF.TAG_TUPLE:
            return value[0]
        return value

    def integers(self, first: int = 0, stop: int | None = None) -> np.ndarray:
        """Items `first:stop` of an unsigned integer value (a tile table), as int64."""
        if self.dtype not in TABLE_TYPES:
            raise TiffFormatError(f"TIFF tag {self.name} is not a table of integers")
        stop = self.count if stop is None else min(stop, self.count)
        item = ITEM_SIZES[self.dtype]
        return self.file.array(self.dtype, max(0, stop - first), self.valueoffset + first * item)


class Tags:
    """A directory's entries: iterated in file order; `tags[code]` (or `tags[name]`) the first
    with that code."""

    def __init__(self, tags: list[TiffTag]) -> None:
        self._tags = tags
        self._first: dict[int, TiffTag] = {}
        for tag in tags:
            self._first.setdefault(tag.code, tag)

    def __iter__(self) -> Iterator[TiffTag]:
        return iter(self._tags)

    def __len__(self) -> int:
        return len(self._tags)

    def __contains__(self, key: int | str) -> bool:
        return self.get(key) is not None

    def __getitem__(self, key: int | str) -> TiffTag:
        tag = self.get(key)
        if tag is None:
            raise KeyError(key)
        return tag

    def get(self, key: int | str) -> TiffTag | None:
        if isinstance(key, str):
            return next((tag for tag in self._tags if tag.name == key), None)
        return self._first.get(key)


class TiffPage:
    """One directory (IFD) of the main chain, with what a slide needs to know of it."""

    def __init__(self, index: int, offset: int, tags: Tags) -> None:
        self.index, self.offset, self.tags = index, offset, tags
        description = self._value(270, "")
        self.description = description if isinstance(description, str) else ""
        self.compression = int(self._value(259, 1))
        self.is_tiled = int(self._value(322, 0)) > 0
        self.subfiletype = int(self._value(254, 0))
        self.width, self.height = int(self._value(256, 0)), int(self._value(257, 0))
        self.shape = (self.height, self.width, int(self._value(277, 1)))
        offsets_code, counts_code = LAYOUT_TAGS[self.is_tiled]
        self._offsets, self._counts = tags.get(offsets_code), tags.get(counts_code)

    def _value(self, code: int, default: Any) -> Any:
        tag = self.tags.get(code)
        return default if tag is None else tag.value

    @property
    def tile_count(self) -> int:
        """Tiles (or strips) in the page's tables; TruncatedError where the two tables differ
        in length."""
        offsets = self._offsets.count if self._offsets is not None else 0
        counts = self._counts.count if self._counts is not None else 0
        if offsets != counts:
            raise TruncatedError("a page's tile tables differ in length")
        return offsets

    def table_parts(self, part: int = TABLE_PART) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(index of the first tile, offsets, byte counts) of `part` tiles at a time, int64."""
        count = self.tile_count
        for first in range(0, count, part):
            yield (first, self._offsets.integers(first, first + part),
                   self._counts.integers(first, first + part))

    @property
    def dataoffsets(self) -> np.ndarray:
        """Where every tile (or strip) lies: the whole table, so for small pages only."""
        return self._whole()[0]

    @property
    def databytecounts(self) -> np.ndarray:
        return self._whole()[1]

    def _whole(self) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self.table_parts(max(1, self.tile_count)))
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return parts[0][1], parts[0][2]


class TiffReader:
    """The main chain of directories of a TIFF or BigTIFF file, open for reading.
    TiffFormatError (TruncatedError where something lies past the end) for a file whose header
    or directories cannot be read."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._fd = os.open(Path(path), os.O_RDONLY)
        try:
            self._read()
        except BaseException:
            os.close(self._fd)
            raise

    def _read(self) -> None:
        size = os.fstat(self._fd).st_size
        header = os.pread(self._fd, 16, 0)
        orders = {b"II": "<", b"MM": ">"}
        if len(header) < 8 or header[:2] not in orders:
            raise TiffFormatError("not a TIFF file")
        order = orders[header[:2]]
        version = struct.unpack(order + "H", header[2:4])[0]
        if version == 42:
            layout, first = _CLASSIC, struct.unpack(order + "I", header[4:8])[0]
        elif version == 43 and len(header) == 16 and \
                struct.unpack(order + "HH", header[4:8]) == (8, 0):
            layout, first = _BIGTIFF, struct.unpack(order + "Q", header[8:16])[0]
        else:
            raise TiffFormatError("not a TIFF file")
        self.byteorder, self.bigtiff, self.size = order, layout.bigtiff, size
        self._file = _File(self._fd, size, order)
        self._layout = layout
        self.pages = self._chain(first)

    def _chain(self, offset: int) -> list[TiffPage]:
        pages: list[TiffPage] = []
        seen: set[int] = set()
        while offset:
            if offset in seen or len(pages) >= MAX_PAGES:
                raise TiffFormatError("TIFF directories that loop")
            seen.add(offset)
            page, offset = self._directory(len(pages), offset)
            pages.append(page)
        return pages

    def _directory(self, index: int, offset: int) -> tuple[TiffPage, int]:
        """The page whose directory is at `offset`, and the offset of the next (0: none)."""
        layout, order, file = self._layout, self.byteorder, self._file
        count_size = struct.calcsize(order + layout.entry_count)
        if offset < 8 or offset + count_size > file.size:
            raise TruncatedError("a TIFF directory lies past the end of the file")
        (count,) = struct.unpack(order + layout.entry_count, file.read(count_size, offset))
        if count > MAX_TAGS:
            raise TiffFormatError("a TIFF directory of too many entries")
        entries_at = offset + count_size
        size = count * layout.entry_size + struct.calcsize(order + layout.offset)
        if entries_at + size > file.size:
            raise TruncatedError("a TIFF directory lies past the end of the file")
        data = file.read(size, entries_at)
        tags = []
        for number, (code, dtype, items, stored) in enumerate(struct.iter_unpack(
                order + layout.entry, data[:count * layout.entry_size])):
            if dtype not in ITEM_SIZES:
                continue  # a type no reader knows (tifffile skips these too)
            length = items * ITEM_SIZES[dtype]
            if length <= layout.inline:
                where = entries_at + number * layout.entry_size + layout.entry_size - layout.inline
            else:
                (where,) = struct.unpack(order + layout.offset, stored)
                if where < 8 or where + length > file.size:
                    raise TruncatedError("a TIFF tag value lies past the end of the file")
            tags.append(TiffTag(code, dtype, items, where, length, file))
        (following,) = struct.unpack(order + layout.offset, data[count * layout.entry_size:])
        return TiffPage(index, offset, Tags(tags)), following

    @property
    def fd(self) -> int:
        return self._fd

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TiffReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
