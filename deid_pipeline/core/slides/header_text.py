"""Blank the text a scanner may leave in the headers of JPEG and JPEG 2000 tiles.

A compressed tile opens with marker segments before its image data, and some of them carry free
text: JPEG comments (COM) and application segments (APPn: Exif, XMP, vendor data), JPEG 2000
comments (COM). Their payload is overwritten with spaces, byte for byte, so the tile keeps its
length and its image data: it decodes to the same pixels and the slide's tile tables stay as
they were. JPEG's APP0 (JFIF) and APP14 (Adobe) stay: a decoder reads them to choose the colour
transform.

The headers of all the tiles in a buffer are walked together with numpy, a segment per pass, so
the cost is a few array operations per segment of the longest header, not Python per tile. Only
the header is read: segments between the scans of a progressive JPEG and bytes after its end
are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deid_pipeline.core.slides.aperio import SlideError

SPACE = 0x20
MARKER = 0xFF
# Longer headers are malformed: a JPEG header has about ten segments.
MAX_SEGMENTS = 256


@dataclass(frozen=True)
class Syntax:
    """Which marker codes (the byte after 0xFF) matter when walking a stream's header: tables
    of 256 booleans, indexed by the code, so that a pass over many headers is one lookup."""

    name: str
    opening: int  # the marker every stream starts with
    closing: np.ndarray  # markers that end the header (the image data, or the stream)
    standalone: np.ndarray  # markers without a length field
    text: np.ndarray  # segments whose payload is free text
    text_after: int  # payload bytes before the text (JPEG 2000's registration value)


def _codes(*codes: int) -> np.ndarray:
    table = np.zeros(256, bool)
    table[list(codes)] = True
    return table


JPEG = Syntax(
    "JPEG", opening=0xD8, closing=_codes(0xDA, 0xD9),  # SOI; SOS, EOI
    standalone=_codes(0x01, *range(0xD0, 0xD8)),  # TEM, RST0-7
    text=_codes(0xFE, *range(0xE1, 0xEE), 0xEF),  # COM, APP1-APP13, APP15
    text_after=0,
)
JPEG_2000 = Syntax(
    "JPEG 2000", opening=0x4F, closing=_codes(0x90, 0xD9),  # SOC; SOT, EOC
    standalone=_codes(), text=_codes(0x64), text_after=2,  # COM
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
    position, end = starts + 2, ends
    payloads: list[tuple[int, int]] = []
    for _ in range(MAX_SEGMENTS):
        if not len(position):
            return payloads
        if (end - position < 2).any() or (data[position] != MARKER).any():
            raise _unreadable(syntax)
        marker = data[position + 1]
        fill = marker == MARKER  # JPEG allows 0xFF fill bytes before a marker
        closing = syntax.closing[marker]
        segment = ~(fill | closing | syntax.standalone[marker])
        step = np.where(fill, 1, 2).astype(np.int64)
        at = position[segment]
        if (end[segment] - at < 4).any():
            raise _unreadable(syntax)
        length = data[at + 2].astype(np.int64) << 8 | data[at + 3]
        if (length < 2).any() or (at + 2 + length > end[segment]).any():
            raise _unreadable(syntax)
        step[segment] += length
        text = syntax.text[marker[segment]]
        payloads += [(int(first), int(stop)) for first, stop in zip(
            at[text] + 4 + syntax.text_after, at[text] + 2 + length[text], strict=True)
            if stop > first]
        position, end = (position + step)[~closing], end[~closing]
    raise _unreadable(syntax)


def _unreadable(syntax: Syntax) -> SlideError:
    return SlideError(f"a {syntax.name} tile or strip whose header cannot be read")
