"""Our TIFF directory reader against tifffile's, and the memory it keeps: tile tables as numpy
arrays, a part at a time, whatever the tile count."""

import numpy as np
import pytest
import tifffile

from deid_pipeline.core.slides import page_copy, tiff_directory
from deid_pipeline.core.slides.page_copy import copied_tag, copy_page, pixel_tags
from deid_pipeline.core.slides.tiff_directory import (
    TiffFormatError,
    TiffReader,
    TruncatedError,
)
from deid_pipeline.core.slides.tiff_output import TiffOutput


def write_pages(path, *, bigtiff=False, byteorder="<"):
    rows, columns = np.mgrid[0:300, 0:200]
    image = np.stack([rows % 251, columns % 241, (rows * columns) % 239], -1).astype(np.uint8)
    with tifffile.TiffWriter(path, bigtiff=bigtiff, byteorder=byteorder) as writer:
        writer.write(image, tile=(16, 16), compression="jpeg", photometric="rgb",
                     description="Aperio tiled\r\nline two|AppMag = 20", resolution=(3, 4),
                     software="scanner v1", datetime="2020:01:02 03:04:05", metadata=None,
                     extratags=[(315, 2, 0, "Artist Name", True),
                                (33432, 2, 0, "caf\xe9 copyright".encode("cp1252"), True),
                                (700, 1, 5, b"<xmp>", True)])
        writer.write(image[::4, ::4], rowsperstrip=16, compression="lzw", photometric="rgb",
                     subfiletype=1, description="label 50x75", metadata=None)
    return image


@pytest.mark.parametrize("bigtiff, byteorder", [(False, "<"), (True, "<"), (False, ">"),
                                                (True, ">")])
def test_directories_read_as_tifffile_reads_them(bigtiff, byteorder, tmp_path):
    path = tmp_path / "pages.tif"
    write_pages(path, bigtiff=bigtiff, byteorder=byteorder)
    with tifffile.TiffFile(path) as theirs, TiffReader(path) as ours:
        assert (ours.bigtiff, ours.byteorder) == (bigtiff, byteorder)
        assert len(ours.pages) == len(theirs.pages) == 2
        for mine, page in zip(ours.pages, theirs.pages, strict=True):
            assert mine.description == page.description
            assert (mine.is_tiled, mine.compression, mine.subfiletype) == (
                page.is_tiled, page.compression, page.subfiletype)
            assert mine.shape == page.shape
            assert [tag.code for tag in mine.tags] == [tag.code for tag in page.tags]
            for tag in mine.tags:
                expected = page.tags[tag.code]
                assert (tag.name, tag.dtype, tag.count, tag.valueoffset, tag.valuebytecount) == (
                    expected.name, expected.dtype, expected.count, expected.valueoffset,
                    expected.valuebytecount)
                if tag.code not in (273, 279, 324, 325):
                    assert tag.value == expected.value
            np.testing.assert_array_equal(mine.dataoffsets, page.dataoffsets)
            np.testing.assert_array_equal(mine.databytecounts, page.databytecounts)
            assert mine.tile_count == len(page.dataoffsets)


def test_tile_tables_are_read_as_numpy_parts_never_whole(tmp_path):
    path = tmp_path / "pages.tif"
    write_pages(path)
    with tifffile.TiffFile(path) as tif:
        offsets, counts = tif.pages[0].dataoffsets, tif.pages[0].databytecounts
    with TiffReader(path) as tiff:
        parts = list(tiff.pages[0].table_parts(100))
    assert [first for first, _, _ in parts] == [0, 100, 200] and len(offsets) == 247
    assert all(a.dtype == np.int64 and len(a) <= 100 for _, o, c in parts for a in (o, c))
    np.testing.assert_array_equal(np.concatenate([o for _, o, _ in parts]), offsets)
    np.testing.assert_array_equal(np.concatenate([c for _, _, c in parts]), counts)


@pytest.mark.parametrize("content, error", [
    (b"", TiffFormatError),
    (b"PK\x03\x04" + bytes(100), TiffFormatError),
    (b"II*\x00" + (10**6).to_bytes(4, "little") + bytes(100), TruncatedError),
    (b"II*\x00\x08\x00\x00\x00" + (5000).to_bytes(2, "little") + bytes(100), TiffFormatError),
])
def test_a_file_that_is_no_readable_tiff_is_refused(content, error, tmp_path):
    path = tmp_path / "bad.tif"
    path.write_bytes(content)
    with pytest.raises(error):
        TiffReader(path)


def test_directories_that_loop_are_refused(tmp_path):
    path = tmp_path / "loop.tif"
    # One directory of no entries whose next directory is itself.
    path.write_bytes(b"II*\x00\x08\x00\x00\x00" + b"\x00\x00" + b"\x08\x00\x00\x00")
    with pytest.raises(TiffFormatError, match="loop"):
        TiffReader(path)


def copy_all(source, target, *, bigtiff=False):
    with TiffReader(source) as tiff, open(target, "w+b") as out:
        output = TiffOutput(out, bigtiff=bigtiff, byteorder=tiff.byteorder)
        for page in tiff.pages:
            copy_page(output, tiff.fd, page, [*pixel_tags(tiff.fd, page),
                                              copied_tag(tiff.fd, page.tags[270])])


def test_a_page_copied_a_table_part_at_a_time_is_the_page_copied_whole(tmp_path, monkeypatch):
    source = tmp_path / "pages.tif"
    image = write_pages(source)
    copy_all(source, tmp_path / "whole.tif")
    parts = []
    real = tiff_directory.TiffPage.table_parts

    def counted(page, part=tiff_directory.TABLE_PART):
        for first, offsets, counts in real(page, 10):
            parts.append(len(offsets))
            yield first, offsets, counts

    monkeypatch.setattr(tiff_directory.TiffPage, "table_parts", counted)
    monkeypatch.setattr(page_copy, "WINDOW", 3000)
    copy_all(source, tmp_path / "parts.tif")
    assert max(parts) == 10
    with tifffile.TiffFile(tmp_path / "whole.tif") as whole, \
            tifffile.TiffFile(tmp_path / "parts.tif") as in_parts:
        for a, b in zip(whole.pages, in_parts.pages, strict=True):
            np.testing.assert_array_equal(a.asarray(), b.asarray())
            assert list(a.databytecounts) == list(b.databytecounts)
        np.testing.assert_array_equal(in_parts.pages[0].asarray(),
                                      tifffile.imread(source, key=0))
        assert in_parts.pages[0].asarray().shape == image.shape


def test_tiles_out_of_table_order_are_sorted_whole_and_still_copied_right(tmp_path):
    """A writer may store tiles in any order: the copy then takes the table whole."""
    rows, columns = np.mgrid[0:64, 0:64]
    image = np.stack([rows * 4, columns * 4, rows + columns], -1).astype(np.uint8)
    tiles = [image[y:y + 16, x:x + 16].copy() for y in range(0, 64, 16) for x in range(0, 64, 16)]
    source = tmp_path / "shuffled.tif"
    with tifffile.TiffWriter(source) as writer:
        writer.write(image, tile=(16, 16), photometric="rgb", description="shuffled")
    # Swap the bytes of the first and last tiles, and their offsets.
    with tifffile.TiffFile(source) as tif:
        page = tif.pages[0]
        offsets, tag = list(page.dataoffsets), page.tags[324]
    content = bytearray(source.read_bytes())
    size = 16 * 16 * 3
    first, last = offsets[0], offsets[-1]
    content[first:first + size], content[last:last + size] = (content[last:last + size],
                                                              content[first:first + size])
    offsets[0], offsets[-1] = offsets[-1], offsets[0]
    content[tag.valueoffset:tag.valueoffset + 4 * len(offsets)] = np.array(
        offsets, "<u4").tobytes()
    source.write_bytes(bytes(content))
    with TiffReader(source) as tiff:
        assert not page_copy._in_table_order(tiff.pages[0])
    copy_all(source, tmp_path / "copy.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "copy.tif"), image)
    assert len(tiles) == 16
