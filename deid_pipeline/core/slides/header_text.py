"""Blank the text a scanner may leave in the headers of JPEG and JPEG 2000 tiles.

A compressed tile opens with marker segments before its image data, and some of them carry free
text: JPEG comments (COM) and application segments (APPn: Exif, XMP, vendor data), JPEG 2000
comments (COM). Their payload is overwritten with spaces, byte for byte, so the tile keeps its
length and its image data: it decodes to the same pixels and the slide's tile tables stay as
they were. JPEG's APP0 (JFIF) and APP14 (Adobe) stay: a decoder reads them to choose the colour
transform.

The headers of all the tiles in a buffer are walked together with numpy, a segment per pass, so
the cost is a few array operations per segment of the longest header, not Python per tile; JPEG
tiles whose header is byte for byte the first tile's (a level's tiles share theirs: the tables
are in JPEGTables) are compared with it in one operation instead. Only headers are read:

* a JPEG stream is walked to its first scan (SOS). Where more scans follow (a progressive or
  hierarchical frame, or a first scan that codes only some of the frame's components), segments
  between the scans may carry text too, and only then is the rest of the stream (its image data)
  searched for markers, one stream at a time (such tiles are rare in a slide);
* a JPEG 2000 stream is walked through its main header and then the header of each tile-part,
  from one to the next by the tile-part's length (Psot), up to its end (EOC).

Bytes after a stream's end are not read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deid_pipeline.core.slides.aperio import SlideError

SPACE = 0x20
MARKER = 0xFF
# Longer walks are of malformed streams: a JPEG header has about ten segments, a JPEG 2000
# stream some three a tile-part.
MAX_SEGMENTS = 1024
COMPARED_BYTES = 2**22  # header bytes compared at a time


@dataclass(frozen=True)
class Syntax:
    """Which marker codes (the byte after 0xFF) matter when walking a stream's header: tables
    of 256 booleans, indexed by the code, so that a pass over many headers is one lookup."""

    name: str
    opening: int  # the marker every stream starts with
    closing: np.ndarray  # markers that end the walk (the image data, or the stream)
    standalone: np.ndarray  # markers without a length field
    text: np.ndarray  # segments whose payload is free text
    text_after: int  # payload bytes before the text (JPEG 2000's registration value)
    # JPEG: frame headers (SOFn, DHP), which give the component count; those of frames coded in
    # several scans whatever their components (progressive, hierarchical); the scan header.
    frames: np.ndarray | None = None
    scans_follow: np.ndarray | None = None
    scan: int | None = None
    # JPEG 2000: the tile-part header (SOT, which gives the tile-part's length) and the start of
    # its data (SOD, no length field), after which the next tile-part follows.
    tile_part: int | None = None
    tile_data: int | None = None


def _codes(*codes: int) -> np.ndarray:
    table = np.zeros(256, bool)
    table[list(codes)] = True
    return table


SOS, EOI = 0xDA, 0xD9
JPEG = Syntax(
    "JPEG", opening=0xD8, closing=_codes(SOS, EOI),  # SOI; SOS, EOI
    standalone=_codes(0x01, *range(0xD0, 0xD8)),  # TEM, RST0-7
    text=_codes(0xFE, *range(0xE1, 0xEE), 0xEF),  # COM, APP1-APP13, APP15
    text_after=0,
    frames=_codes(*range(0xC0, 0xD0), 0xDE) & ~_codes(0xC4, 0xC8, 0xCC),  # not DHT, JPG, DAC
    scans_follow=_codes(0xC2, 0xC5, 0xC6, 0xC7, 0xCA, 0xCD, 0xCE, 0xCF, 0xDE),
    scan=SOS,
)
JPEG_2000 = Syntax(
    "JPEG 2000", opening=0x4F, closing=_codes(0xD9),  # SOC; EOC
    standalone=_codes(), text=_codes(0x64), text_after=2,  # COM
    tile_part=0x90, tile_data=0x93,  # SOT, SOD
)
# TIFF compression codes: JPEG, Aperio's JPEG 2000 (YCbCr, RGB), and JPEG 2000.
SYNTAX_OF_COMPRESSION = {7: JPEG, 33003: JPEG_2000, 33005: JPEG_2000, 34712: JPEG_2000}


def blank_header_text(data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                      syntax: Syntax) -> None:
    """Overwrite with spaces, in place, the text payloads in the headers of the streams
    `data[starts[i]:ends[i]]` (`data`: writable uint8). Raises SlideError for a stream whose
    header cannot be walked."""
    for first, stop in text_payloads(data, starts, ends, syntax):
        data[first:stop] = SPACE


def text_payloads(data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  syntax: Syntax) -> list[tuple[int, int]]:
    """(first, stop) of every text payload in the headers of the streams
    `data[starts[i]:ends[i]]`."""
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    opened = ends - starts >= 2
    opened[opened] = (data[starts[opened]] == MARKER) & (data[starts[opened] + 1] == syntax.opening)
    if not opened.all():
        raise SlideError(f"a {syntax.name} tile or strip that does not start as one")
    if syntax.scan is not None and len(starts) > 1:
        walked = ~_same_plain_header(data, starts, ends, syntax)
        starts, ends = starts[walked], ends[walked]
    walk = _Walk(starts + 2, ends, syntax)
    for _ in range(MAX_SEGMENTS):
        if not len(walk.position):
            return walk.payloads
        walk.step_all(data)
    raise _unreadable(syntax)


def _same_plain_header(data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                       syntax: Syntax) -> np.ndarray:
    """Which JPEG streams have, byte for byte, the header of the first one (up to the end of
    its scan header) when walking that finds no text in it and a scan that no other follows:
    walking theirs would find the same. The tiles of a level share their header (the tables
    are in JPEGTables), so one comparison of bytes replaces a pass per segment."""
    same = np.zeros(len(starts), bool)
    length = _plain_header_length(data, int(starts[0]), int(ends[0]), syntax)
    if length is None:
        return same
    fits = np.flatnonzero(ends - starts >= length)
    template = data[starts[0]:starts[0] + length]
    headers = np.lib.stride_tricks.sliding_window_view(data, length)
    for part in np.array_split(fits, max(1, len(fits) * length // COMPARED_BYTES)):
        same[part] = (headers[starts[part]] == template).all(axis=1)
    return same


def _plain_header_length(data: np.ndarray, start: int, end: int, syntax: Syntax) -> int | None:
    """The length of the JPEG stream's header up to the end of its first scan header, if its
    walk finds no text and a scan that no other follows (all components, a frame of one scan);
    else None."""
    try:
        walk = _Walk(np.array([start + 2]), np.array([end]), syntax)
        for _ in range(MAX_SEGMENTS):
            if not len(walk.position):
                break
            walk.step_all(data)
    except SlideError:
        return None
    if len(walk.position) or walk.payloads:
        return None
    # The walk went through: every segment is whole and inside the stream.
    position, components = start + 2, -1
    while True:
        code = int(data[position + 1])
        if code == MARKER:
            position += 1
            continue
        if syntax.standalone[code]:
            position += 2
            continue
        if code != syntax.scan and syntax.closing[code]:
            return None
        length = int(data[position + 2]) << 8 | int(data[position + 3])
        if syntax.frames[code]:
            if syntax.scans_follow[code]:
                return None
            components = int(data[position + 9])
        if code == syntax.scan:
            in_scan = int(data[position + 4])
            return position + 2 + length - start if in_scan == components else None
        position += 2 + length


class _Walk:
    """Where the walk of each stream not yet done stands, and what it has found."""

    def __init__(self, position: np.ndarray, end: np.ndarray, syntax: Syntax) -> None:
        count = len(position)
        self.syntax, self.position, self.end = syntax, position, end
        self.components = np.full(count, -1, np.int64)  # JPEG: of the frame; -1: no frame yet
        self.scans_follow = np.zeros(count, bool)  # JPEG: a frame coded in several scans
        self.part = np.full(count, -1, np.int64)  # JPEG 2000: where the tile-part starts
        self.part_length = np.zeros(count, np.int64)  # and its length (0: up to EOC)
        self.payloads: list[tuple[int, int]] = []

    def step_all(self, data: np.ndarray) -> None:
        """Read the marker at each stream's position, note its text, move past it."""
        syntax, position, end = self.syntax, self.position, self.end
        if (end - position < 2).any() or (data[position] != MARKER).any():
            raise _unreadable(syntax)
        marker = data[position + 1]
        fill = marker == MARKER  # JPEG allows 0xFF fill bytes before a marker
        done = syntax.closing[marker]
        tile_data = marker == syntax.tile_data if syntax.tile_data is not None else None
        segment = ~(fill | done | syntax.standalone[marker])
        if tile_data is not None:
            segment &= ~tile_data
        step = np.where(fill, 1, 2).astype(np.int64)
        at = position[segment]
        if (end[segment] - at < 4).any():
            raise _unreadable(syntax)
        length = data[at + 2].astype(np.int64) << 8 | data[at + 3]
        if (length < 2).any() or (at + 2 + length > end[segment]).any():
            raise _unreadable(syntax)
        step[segment] += length
        text = syntax.text[marker[segment]]
        self.payloads += [(int(first), int(stop)) for first, stop in zip(
            at[text] + 4 + syntax.text_after, at[text] + 2 + length[text], strict=True)
            if stop > first]
        if syntax.scan is not None:
            self._note_frames(data, marker, np.flatnonzero(segment), length)
            self._after_first_scan(data, marker)
        if tile_data is not None:
            self._note_tile_parts(data, marker, np.flatnonzero(segment), length)
            done = self._to_next_tile_part(tile_data, step, done)
        keep = ~done
        self.position, self.end = (position + step)[keep], end[keep]
        self.components, self.scans_follow = self.components[keep], self.scans_follow[keep]
        self.part, self.part_length = self.part[keep], self.part_length[keep]

    def _note_frames(self, data: np.ndarray, marker: np.ndarray, segments: np.ndarray,
                     length: np.ndarray) -> None:
        """JPEG: the component count of each frame header (SOFn) met in this pass, and whether
        its frame is coded in several scans whatever its components."""
        frame = self.syntax.frames[marker[segments]]
        if not frame.any():
            return
        if (length[frame] < 8).any():
            raise _unreadable(self.syntax)
        where = segments[frame]
        self.components[where] = data[self.position[where] + 9]
        self.scans_follow[where] |= self.syntax.scans_follow[marker[where]]

    def _after_first_scan(self, data: np.ndarray, marker: np.ndarray) -> None:
        """JPEG: the text payloads after the first scan of the streams whose header ends in
        this pass with a scan that more may follow: of a progressive or hierarchical frame, of
        fewer components than its frame, or with no frame before it."""
        scan = np.flatnonzero(marker == self.syntax.scan)
        if not len(scan):
            return
        at = self.position[scan]
        if (self.end[scan] - at < 5).any():
            raise _unreadable(self.syntax)
        in_scan = data[at + 4].astype(np.int64)
        more = (self.scans_follow[scan] | (in_scan < self.components[scan])
                | (self.components[scan] < 0))
        for index in scan[more]:
            self.payloads += _payloads_after_first_scan(
                data, int(self.position[index]), int(self.end[index]), self.syntax)

    def _note_tile_parts(self, data: np.ndarray, marker: np.ndarray, segments: np.ndarray,
                         length: np.ndarray) -> None:
        """JPEG 2000: where each tile-part header (SOT) met in this pass starts, and the
        tile-part's length (Psot)."""
        sot = marker[segments] == self.syntax.tile_part
        if not sot.any():
            return
        if (length[sot] < 10).any():
            raise _unreadable(self.syntax)
        where = segments[sot]
        at = self.position[where]
        self.part[where] = at
        self.part_length[where] = (data[at + 6].astype(np.int64) << 24
                                   | data[at + 7].astype(np.int64) << 16
                                   | data[at + 8].astype(np.int64) << 8 | data[at + 9])

    def _to_next_tile_part(self, tile_data: np.ndarray, step: np.ndarray,
                           done: np.ndarray) -> np.ndarray:
        """JPEG 2000: at the start of a tile-part's data (SOD), step to the next tile-part (in
        place in `step`); the walk of the last one (Psot 0: up to EOC, or up to the stream's
        end) is done. Returns which walks are done."""
        if not tile_data.any():
            return done
        if (self.part[tile_data] < 0).any():
            raise _unreadable(self.syntax)  # tile data outside any tile-part
        following = self.part + self.part_length
        last = tile_data & ((self.part_length == 0) | (following >= self.end))
        jump = tile_data & ~last
        if (following[jump] <= self.position[jump]).any():
            raise _unreadable(self.syntax)
        step[jump] = following[jump] - self.position[jump]
        return done | last


def _payloads_after_first_scan(data: np.ndarray, position: int, end: int,
                               syntax: Syntax) -> list[tuple[int, int]]:
    """Text payloads of one JPEG stream from its first scan header (SOS at `position`) to its
    end: the segments between scans are found by searching the image data for markers (0xFF
    followed by a code other than 0x00, a restart or another 0xFF)."""
    rest = data[position:end]
    ff = np.flatnonzero(rest[:-1] == MARKER)
    code = rest[ff + 1]
    markers = position + ff[(code != 0) & (code != MARKER) & ((code < 0xD0) | (code > 0xD7))]
    payloads = []
    while True:  # `position`: a scan header (SOS)
        if end - position < 4:
            raise _unreadable(syntax)
        position += 2 + (int(data[position + 2]) << 8 | int(data[position + 3]))
        if position > end:
            raise _unreadable(syntax)
        index = int(np.searchsorted(markers, position))
        if index == len(markers):
            return payloads  # the stream ends in image data, with no EOI
        position = int(markers[index])
        while True:  # the segments between two scans, or up to EOI
            if end - position < 2 or data[position] != MARKER:
                raise _unreadable(syntax)
            code = int(data[position + 1])
            if code == MARKER:
                position += 1
                continue
            if code == EOI:
                return payloads
            if code == syntax.scan:
                break
            if syntax.standalone[code]:
                position += 2
                continue
            if end - position < 4:
                raise _unreadable(syntax)
            length = int(data[position + 2]) << 8 | int(data[position + 3])
            if length < 2 or position + 2 + length > end:
                raise _unreadable(syntax)
            if syntax.text[code] and length > 2 + syntax.text_after:
                payloads.append((position + 4 + syntax.text_after, position + 2 + length))
            position += 2 + length


def _unreadable(syntax: Syntax) -> SlideError:
    return SlideError(f"a {syntax.name} tile or strip whose header cannot be read")
