"""A TIFF file written front to back from byte ranges copied out of other files.

tifffile's writer takes every tile as a Python bytes object and lays the data out itself, so a
slide's gigabytes would pass through the interpreter tile by tile. Here the caller reserves room
for a page's data, copies it there in the kernel (`copy_range`), and then appends the page's
directory (IFD) with the offsets where the data landed. Tag values are written as given, in the
byte order chosen at the start: a value copied from a file of that byte order stays valid.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

COPY_CHUNK = 8 * 2**20  # bytes per read and write where the kernel cannot copy file to file
# copy_file_range refuses some pairs of files (across file systems on older kernels, on some
# network file systems); the copy then goes through a buffer instead.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


@dataclass(frozen=True)
class Tag:
    """One directory entry: `value` is `count` items of TIFF type `dtype`, already encoded in
    the output's byte order (bytes, or a memoryview of bytes); or, with `at`, a value too long
    for the entry that the caller has already written there (a tile table, written as the copy
    goes) and `value` is empty."""

    code: int
    dtype: int
    count: int
    value: bytes | memoryview
    at: int | None = None


@dataclass(frozen=True)
class _Format:
    header_fields: tuple[int, ...]  # after the byte-order mark: the version, then (BigTIFF)
    header: str  # the offset size and padding; and their struct format
    offset: str  # struct format of an offset
    entry_count: str
    entry: str  # code, type, count; then the value or its offset
    inline: int  # values of at most this many bytes sit in the entry itself


_CLASSIC = _Format((42,), "H", "I", "H", "HHI", 4)
_BIGTIFF = _Format((43, 8, 0), "HHH", "Q", "Q", "HHQ", 8)
LONG, LONG8 = 4, 16  # the TIFF types of 32- and 64-bit offsets


class TiffOutput:
    """A TIFF being written to `file` (empty, opened for reading and writing: "r+b"): the header
    at once, then pages in the order they are appended. All writes go to explicit positions."""

    def __init__(self, file: BinaryIO, *, bigtiff: bool, byteorder: str) -> None:
        self.file = file
        self.fd = file.fileno()
        self.bigtiff = bigtiff
        self.byteorder = byteorder
        self._format = _BIGTIFF if bigtiff else _CLASSIC
        mark = b"II" if byteorder == "<" else b"MM"
        header = mark + struct.pack(byteorder + self._format.header, *self._format.header_fields)
        self._link = len(header)  # where the offset of the next directory goes
        self.size = len(header) + struct.calcsize(self._format.offset)
        os.pwrite(self.fd, header + bytes(self.size - len(header)), 0)

    @property
    def offset_type(self) -> int:
        """The TIFF type of offsets and byte counts in this file."""
        return LONG8 if self.bigtiff else LONG

    @property
    def inline_size(self) -> int:
        """Values of at most this many bytes sit in their directory entry."""
        return self._format.inline

    def reserve(self, length: int, *, align: int = 1) -> int:
        """Where the next `length` bytes of data go, at a multiple of `align`; the caller
        writes them there."""
        offset = self.size + -self.size % align
        self.size = offset + length
        return offset

    def append_ifd(self, tags: Iterable[Tag]) -> None:
        """Write a directory of `tags` (one per code) after everything so far, and link the
        previous directory (or the header) to it."""
        form, order = self._format, self.byteorder
        tags = sorted(tags, key=lambda tag: tag.code)
        at = self.size + self.size % 2  # a directory starts on a word boundary
        entries = bytearray(struct.pack(order + form.entry_count, len(tags)))
        entry_size = struct.calcsize(order + form.entry + form.offset)
        next_link = at + len(entries) + len(tags) * entry_size
        end = next_link + struct.calcsize(order + form.offset)
        values = []  # (where, value) of the values too long for their entry
        for tag in tags:
            if tag.at is not None:
                field = struct.pack(order + form.offset, tag.at)
            elif len(tag.value) <= form.inline:
                field = bytes(tag.value).ljust(form.inline, b"\0")
            else:
                end += end % 2  # so does a value
                values.append((end, tag.value))
                field = struct.pack(order + form.offset, end)
                end += len(tag.value)
            entries += struct.pack(order + form.entry, tag.code, tag.dtype, tag.count) + field
        entries += struct.pack(order + form.offset, 0)  # no next directory, until one comes
        os.pwrite(self.fd, entries, at)
        # Each value written where it goes: a level's tile table is megabytes, not copied again.
        for where, value in values:
            os.pwrite(self.fd, value, where)
        os.pwrite(self.fd, struct.pack(order + form.offset, at), self._link)
        self._link = next_link
        self.size = end


def copy_range(source: int, offset: int, length: int, target: int, to: int) -> None:
    """Copy `length` bytes at `offset` of the file `source` to `to` in the file `target` (both
    file descriptors; neither's position moves): in the kernel where it can, so that no byte
    passes through this process."""
    if not hasattr(os, "copy_file_range"):  # not Linux
        _copy_through_buffer(source, offset, length, target, to)
        return
    while length > 0:
        try:
            copied = os.copy_file_range(source, target, length, offset, to)
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
            _copy_through_buffer(source, offset, length, target, to)
            return
        if copied == 0:
            raise EOFError("the source file ends before the range to copy")
        offset, to, length = offset + copied, to + copied, length - copied


def _copy_through_buffer(source: int, offset: int, length: int, target: int, to: int) -> None:
    while length > 0:
        chunk = os.pread(source, min(length, COPY_CHUNK), offset)
        if not chunk:
            raise EOFError("the source file ends before the range to copy")
        os.pwrite(target, chunk, to)
        offset, to, length = offset + len(chunk), to + len(chunk), length - len(chunk)
