"""What a slide stores: its tiles and strips as bytes, and what blanking their comments makes
of them."""

from pathlib import Path

import tifffile


def stored_segments(path: Path) -> list[tuple[bytes | None, list[bytes]]]:
    """(JPEG tables, compressed tiles or strips as stored) of every level and the thumbnail."""
    pages = []
    with tifffile.TiffFile(path) as tif:
        for index, page in enumerate(tif.pages):
            if page.is_tiled or index == 1:
                segments = [segment for segment, _ in tif.filehandle.read_segments(
                    page.dataoffsets, page.databytecounts, sort=False)]
                pages.append((page.jpegtables, segments))
    return pages


def blank_comments(stream: bytes, marker: bytes, text_after: int = 0) -> bytes:
    """`stream` with the payload of each `marker` segment of its header (after `text_after`
    bytes) replaced by spaces: what the de-identifier should make of it."""
    blanked, position = bytearray(stream), 2
    while blanked[position:position + 2] not in (b"\xff\xda", b"\xff\x90", b"\xff\xd9"):
        # up to SOS, SOT or EOI
        length = int.from_bytes(blanked[position + 2:position + 4], "big")
        if blanked[position:position + 2] == marker:
            first = position + 4 + text_after
            blanked[first:position + 2 + length] = b" " * (position + 2 + length - first)
        position += 2 + length
    return bytes(blanked)
