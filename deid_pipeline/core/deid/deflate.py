"""Raw deflate (no zlib header) of a Deflated Explicit VR Little Endian data set, read and
written with zlib-ng: the same format and compression level as the standard library's zlib,
about twice as fast to compress image data (a deflated file's Pixel Data is inside the
deflated stream, so every byte of it passes through here) and faster to inflate."""

from __future__ import annotations

from collections.abc import Iterable

from zlib_ng import zlib_ng

RAW_DEFLATE = -zlib_ng.MAX_WBITS
DeflateError = zlib_ng.error


def deflate(chunks: Iterable[bytes]) -> bytes:
    """The chunks, one after another, as one raw deflate stream at the default level."""
    compressor = zlib_ng.compressobj(zlib_ng.Z_DEFAULT_COMPRESSION, zlib_ng.DEFLATED, RAW_DEFLATE)
    return b"".join([*map(compressor.compress, chunks), compressor.flush()])


def inflate(data: bytes) -> bytes:
    """A whole raw deflate stream's bytes; DeflateError when it is corrupt or cut short."""
    return zlib_ng.decompress(data, RAW_DEFLATE)
