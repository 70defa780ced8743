"""Deflated data sets are read and written with zlib-ng: interchangeable with zlib's raw
deflate both ways (other readers inflate what we write, we inflate what they write)."""

import os
import zlib

import pytest

from deid_pipeline.core.deid.deflate import DeflateError, deflate, inflate

DATA_SET = b"\x08\x00\x20\x00DA\x08\x0020120103" * 500 + os.urandom(4096)


def test_what_we_deflate_zlib_inflates_as_the_chunks_joined():
    chunks = [DATA_SET[:100], DATA_SET[100:], b""]
    assert zlib.decompress(deflate(chunks), -zlib.MAX_WBITS) == DATA_SET


def test_what_zlib_deflates_we_inflate():
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert inflate(compressor.compress(DATA_SET) + compressor.flush()) == DATA_SET


def test_a_stream_cut_short_is_an_error():
    with pytest.raises(DeflateError):
        inflate(deflate([DATA_SET])[:-10])
