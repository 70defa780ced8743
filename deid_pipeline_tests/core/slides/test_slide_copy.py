"""The parts of the slide copy: runs of tiles, the TIFF writer, the copy of a page by byte ranges,
and the text blanked in JPEG headers; and, end to end, a slide whose tiles carry a name."""

import errno
import io
from datetime import datetime

import numpy as np
import openslide
import pytest
import tifffile
from PIL import Image

from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline.core.slides import deidentify as deidentify_module
from deid_pipeline.core.slides import page_copy, tiff_output
from deid_pipeline.core.slides.aperio import SlideError
from deid_pipeline.core.slides.deidentify import deidentify_slide
from deid_pipeline.core.slides.header_text import JPEG, JPEG_2000, blank_header_text
from deid_pipeline.core.slides.page_copy import copied_tag, copy_page, pixel_tags
from deid_pipeline.core.slides.synth import write_synthetic_slide
from deid_pipeline.core.slides.tiff_output import TiffOutput, copy_range
from deid_pipeline.core.slides.tile_runs import TileRuns
from deid_pipeline_tests.core.slides.stored import blank_comments, stored_segments

PLANTED = b"PLANTED^NAME 1234"


@pytest.fixture(scope="module")
def settings():
    return load_policy().slides


@pytest.fixture(scope="module")
def pseudonymizer():
    return Pseudonymizer(b"slide copy test secret, not for production")


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return write_synthetic_slide(
        tmp_path_factory.mktemp("slides") / "slide.svs", seed=3, patient_name="POE EDGAR",
        slide_id="S14-00007 C3", date=datetime(2014, 5, 6, 7, 8, 9), width=1536, height=1024)


# -- runs of tiles -------------------------------------------------------------------------------

def runs_of(offsets, counts) -> TileRuns:
    return TileRuns.of(np.array(offsets, np.int64), np.array(counts, np.int64))


def landing(runs: TileRuns, at: int) -> list[int]:
    """Where each tile (in the page's order) lands when the runs are packed from `at`."""
    moved = np.zeros(len(runs.counts), np.int64)
    moved[runs.order] = runs.landing(0, len(runs.order), runs.packed_targets(at))
    return moved.tolist()


def test_back_to_back_tiles_are_one_run_whatever_their_order():
    runs = runs_of([300, 100, 200, 0], [100, 100, 100, 100])
    assert (runs.run_starts.tolist(), runs.run_ends.tolist(), runs.size) == ([0], [400], 400)
    assert landing(runs, 1000) == [1300, 1100, 1200, 1000]


def test_gaps_between_tiles_split_runs_and_are_not_copied():
    runs = runs_of([0, 150, 250], [100, 100, 50])
    assert list(zip(runs.run_starts.tolist(), runs.run_ends.tolist())) == [(0, 100), (150, 300)]
    assert runs.size == 250
    assert landing(runs, 0) == [0, 100, 200]


def test_tiles_that_share_bytes_still_do_and_empty_tiles_stay_empty():
    runs = runs_of([500, 500, 600, 0], [100, 100, 40, 0])
    assert runs.size == 140
    assert landing(runs, 8) == [8, 8, 108, 0]


def test_windows_are_bounded_and_never_cut_through_shared_bytes():
    offsets = list(range(0, 10_000, 100))
    counts = [100] * 100
    counts[49] = 250  # tile 49 reaches into tiles 50 and 51
    runs = runs_of(offsets, counts)
    windows = list(runs.windows(1000))
    assert windows[0] == (0, 10) and windows[-1][1] == 100
    assert all(first == stop for (_, stop), (first, _) in zip(windows, windows[1:]))
    assert (40, 52) in windows  # held open until tile 49's bytes end


def test_the_tile_tables_are_numpy_arrays_of_two_integers_a_tile():
    """What a page of n tiles keeps while it is copied: the page's counts and two int64 arrays of
    n, whatever else is per run or per window. This is what bounds the memory."""
    runs = runs_of(np.arange(0, 10**6, 10), np.full(10**5, 10))
    per_tile = [array for array in (runs.order, runs.starts) if len(array) == 10**5]
    assert len(per_tile) == 2 and all(array.dtype == np.int64 for array in per_tile)
    assert len(runs.run_starts) == len(runs.run_ends) == 1


# -- the copy ------------------------------------------------------------------------------------

def test_a_page_is_copied_in_a_few_large_ranges_not_tile_by_tile(slide, settings, pseudonymizer,
                                                                   tmp_path, monkeypatch):
    calls = []

    def recorded(source, offset, length, target, to):
        calls.append(length)
        copy_range(source, offset, length, target, to)

    monkeypatch.setattr(page_copy, "copy_range", recorded)
    deidentify_slide(slide, tmp_path / "whole", settings, pseudonymizer)
    with tifffile.TiffFile(slide) as tif:
        copied = [sum(page.databytecounts) for index, page in enumerate(tif.pages)
                  if page.is_tiled or index == 1]  # the levels and the thumbnail
    # Each page's tiles lie back to back: one range each.
    assert calls == copied

    calls.clear()
    window = 64 * 2**10
    monkeypatch.setattr(page_copy, "WINDOW", window)
    deidentify_slide(slide, tmp_path / "windows", settings, pseudonymizer)
    assert sum(calls) == sum(copied)
    # Windows of whole tiles, each over half full when tiles are under half a window.
    assert len(calls) <= sum(2 * size // window + 1 for size in copied)


def test_the_copy_falls_back_to_a_buffer_where_the_kernel_cannot_copy(
        slide, settings, pseudonymizer, tmp_path, monkeypatch):
    kernel = deidentify_slide(slide, tmp_path / "kernel", settings, pseudonymizer)

    def refuse(*args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(tiff_output.os, "copy_file_range", refuse)
    monkeypatch.setattr(tiff_output, "COPY_CHUNK", 1000)
    buffered = deidentify_slide(slide, tmp_path / "buffered", settings, pseudonymizer)
    assert buffered.output.read_bytes() == kernel.output.read_bytes()


@pytest.mark.parametrize("bigtiff, byteorder", [(False, "<"), (True, "<"), (False, ">"),
                                                (True, ">")])
def test_copied_pages_read_back_identical_in_either_tiff_and_byte_order(bigtiff, byteorder,
                                                                         tmp_path):
    """Uncompressed, LZW and JPEG tiles, strips; values inline and out of line."""
    rows, columns = np.mgrid[0:300, 0:200]
    image = np.stack([rows % 251, columns % 241, (rows * columns) % 239], -1).astype(np.uint8)
    source = tmp_path / "source.tif"
    with tifffile.TiffWriter(source, byteorder=byteorder) as writer:
        writer.write(image, tile=(64, 64), photometric="rgb", description="tiled raw")
        writer.write(image, tile=(128, 64), compression="lzw", predictor=True,
                     photometric="rgb", description="tiled lzw", resolution=(3, 4))
        writer.write(image, rowsperstrip=32, compression="jpeg", photometric="rgb")
    target = tmp_path / "copy.tif"
    with tifffile.TiffFile(source) as tif, open(target, "w+b") as out:
        output = TiffOutput(out, bigtiff=bigtiff, byteorder=byteorder)
        fd = tif.filehandle.fileno()
        for page in tif.pages:
            tags = pixel_tags(fd, page)
            if 270 in page.tags:
                tags.append(copied_tag(fd, page.tags[270]))
            copy_page(output, fd, page, tags)
    with tifffile.TiffFile(source) as before, tifffile.TiffFile(target) as after:
        assert after.is_bigtiff == bigtiff and after.byteorder == byteorder
        assert len(after.pages) == 3
        for page_before, page_after in zip(before.pages, after.pages, strict=True):
            assert page_after.description == page_before.description
            assert page_after.compression == page_before.compression
            np.testing.assert_array_equal(page_after.asarray(), page_before.asarray())
        assert after.pages[1].tags["XResolution"].value == (3, 1)


def test_a_bigtiff_output_of_a_classic_slide_still_verifies(slide, settings, pseudonymizer,
                                                            tmp_path, monkeypatch):
    monkeypatch.setattr(deidentify_module, "CLASSIC_TIFF_LIMIT", 0)
    result = deidentify_slide(slide, tmp_path, settings, pseudonymizer)
    with tifffile.TiffFile(result.output) as tif:
        assert tif.is_bigtiff
    assert stored_segments(result.output) == stored_segments(slide)


# -- text in JPEG headers ------------------------------------------------------------------------

def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def blanked(stream: bytes, syntax=JPEG) -> bytes:
    data = np.frombuffer(bytearray(stream), np.uint8)
    blank_header_text(data, np.array([0]), np.array([len(stream)]), syntax)
    return data.tobytes()


def test_comments_and_application_text_are_blanked_but_not_what_decoders_read():
    jfif, adobe = segment(0xE0, b"JFIF\0\1\1\0\0\1\0\1\0\0"), segment(0xEE, b"Adobe\0d\0\0\0\0\1")
    comment, exif = segment(0xFE, b"DOE^JANE"), segment(0xE1, b"Exif\0\0DOE^JANE")
    frame = segment(0xC0, bytes(15))
    scan = segment(0xDA, bytes(10)) + b"\x12\xfe\x34DOE^JANE\xff\xd9"  # image data: not a header
    stream = b"\xff\xd8" + jfif + b"\xff\xff" + comment + adobe + exif + frame + scan
    assert blanked(stream) == (b"\xff\xd8" + jfif + b"\xff\xff" + segment(0xFE, b" " * 8)
                               + adobe + segment(0xE1, b" " * 14) + frame + scan)


def test_a_jpeg_2000_comment_keeps_its_registration_value():
    stream = (b"\xff\x4f" + segment(0x51, bytes(20)) + segment(0x64, b"\0\1Kakadu DOE^JANE")
              + segment(0x90, bytes(8)) + b"\xff\x93data")
    assert blanked(stream, JPEG_2000) == (b"\xff\x4f" + segment(0x51, bytes(20))
                                          + segment(0x64, b"\0\1" + b" " * 15)
                                          + segment(0x90, bytes(8)) + b"\xff\x93data")


@pytest.mark.parametrize("stream", [
    b"\x00\x01" + segment(0xFE, b"text"),  # no SOI
    b"\xff\xd8" + segment(0xFE, b"text")[:-2],  # a segment longer than the tile
    b"\xff\xd8\x12\x34" + segment(0xDA, b""),  # no marker where one should be
    b"\xff\xd8" + segment(0xFE, b"no scan follows"),
])
def test_a_header_that_cannot_be_walked_is_refused(stream):
    with pytest.raises(SlideError, match="JPEG tile or strip"):
        blanked(stream)


def with_planted_text(stream: bytes) -> bytes:
    """`stream` with a comment and an Exif segment that name someone, right after its SOI."""
    return stream[:2] + segment(0xFE, PLANTED) + segment(0xE1, b"Exif\0\0" + PLANTED) + stream[2:]


def blank_planted(stream: bytes) -> bytes:
    return blank_comments(blank_comments(stream, b"\xff\xfe"), b"\xff\xe1")


@pytest.fixture(scope="module")
def planted_slide(slide, tmp_path_factory):
    """`slide` again, with a name planted in the header of every tile and thumbnail strip and
    in the levels' JPEG tables."""
    planted = tmp_path_factory.mktemp("planted") / "planted.svs"
    with tifffile.TiffFile(slide) as tif, tifffile.TiffWriter(planted) as writer:
        for index, page in enumerate(tif.pages):
            if not (page.is_tiled or index == 1):
                continue
            segments = [with_planted_text(data) for data, _ in tif.filehandle.read_segments(
                page.dataoffsets, page.databytecounts, sort=False)]
            writer.write(
                iter(segments), shape=page.shape, dtype=page.dtype, photometric=page.photometric,
                tile=(page.tilelength, page.tilewidth) if page.is_tiled else None,
                rowsperstrip=None if page.is_tiled else page.rowsperstrip,
                compression=page.compression, subsampling=page.subsampling,
                compressionargs={"outcolorspace": page.photometric},
                jpegtables=with_planted_text(page.jpegtables) if page.jpegtables else None,
                description=page.description, metadata=None, software=False)
    return planted


def test_a_name_in_the_tiles_jpeg_headers_is_blanked_and_the_pixels_stay(
        planted_slide, slide, settings, pseudonymizer, tmp_path):
    assert planted_slide.read_bytes().count(PLANTED) > 100
    result = deidentify_slide(planted_slide, tmp_path, settings, pseudonymizer)
    assert PLANTED not in result.output.read_bytes()
    # Every tile is the planted one with the two payloads blanked: same length, same image data.
    for (tables_before, before), (tables_after, after) in zip(
            stored_segments(planted_slide), stored_segments(result.output), strict=True):
        assert after == [blank_planted(tile) for tile in before]
        if tables_before:
            assert tables_after == blank_planted(tables_before)
    with openslide.OpenSlide(slide) as original, openslide.OpenSlide(result.output) as copy:
        for level, size in enumerate(original.level_dimensions):
            assert copy.read_region((0, 0), level, size).tobytes() == \
                original.read_region((0, 0), level, size).tobytes()
        assert copy.associated_images["thumbnail"].tobytes() == \
            original.associated_images["thumbnail"].tobytes()


def test_blanking_does_not_touch_the_input(planted_slide, settings, pseudonymizer, tmp_path):
    before = planted_slide.read_bytes()
    deidentify_slide(planted_slide, tmp_path, settings, pseudonymizer)
    assert planted_slide.read_bytes() == before


def progressive_jpeg() -> bytes:
    rows, columns = np.mgrid[0:64, 0:64]
    pixels = np.stack([rows * 4, columns * 4, (rows * columns) % 256], -1).astype(np.uint8)
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, "JPEG", progressive=True, quality=80)
    return stream.getvalue()


def test_text_between_the_scans_of_a_progressive_jpeg_is_blanked():
    stream = progressive_jpeg()
    scans = [index for index in range(len(stream) - 1) if stream[index:index + 2] == b"\xff\xda"]
    assert len(scans) > 3
    # A comment and an Exif segment before the third scan, among the tables a scan may need.
    third = scans[2]
    planted = stream[:third] + segment(0xFE, PLANTED) + segment(0xE1, b"Exif\0\0" + PLANTED) + \
        b"\xff\xff" + stream[third:]
    result = blanked(planted)
    assert PLANTED not in result
    assert result == (stream[:third] + segment(0xFE, b" " * len(PLANTED))
                      + segment(0xE1, b" " * (6 + len(PLANTED))) + b"\xff\xff" + stream[third:])
    decoded = np.asarray(Image.open(io.BytesIO(result)))
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(io.BytesIO(stream))))


def test_a_baseline_jpeg_is_read_only_up_to_its_scan():
    """A single scan of every component: nothing after it is a header, so nothing is searched
    (the planted bytes after the scan header are image data here, and stay)."""
    frame = segment(0xC0, bytes([8, 0, 16, 0, 16, 3]) + bytes(9))
    scan = segment(0xDA, bytes([3]) + bytes(9)) + b"\x12\xff\xfe\x00\x05DOE^JANE\xff\xd9"
    stream = b"\xff\xd8" + frame + scan
    assert blanked(stream) == stream


def test_a_scan_of_fewer_components_than_its_frame_is_followed_by_more():
    frame = segment(0xC0, bytes([8, 0, 16, 0, 16, 3]) + bytes(9))
    first_scan = segment(0xDA, bytes([1]) + bytes(5)) + b"\x12\xff\x00\x34\xff\xd3\x56"
    later_scan = segment(0xDA, bytes([2]) + bytes(7)) + b"\x78\xff\xd9"
    stream = b"\xff\xd8" + frame + first_scan + segment(0xFE, b"DOE^JANE") + later_scan
    assert blanked(stream) == (b"\xff\xd8" + frame + first_scan + segment(0xFE, b" " * 8)
                               + later_scan)


def tile_part(length_field: int, header: bytes, data: bytes) -> bytes:
    sot = b"\xff\x90" + (10).to_bytes(2, "big") + bytes(2) + length_field.to_bytes(4, "big") \
        + bytes([0, 2])
    return sot + header + b"\xff\x93" + data


def test_every_jpeg_2000_tile_part_header_is_walked():
    main = b"\xff\x4f" + segment(0x51, bytes(20)) + segment(0x64, b"\0\1main DOE^JANE")
    data = b"\x12\xff\x64\x00\x10DOE^JANE bits"  # tile data that looks like a COM: not one
    first_header = segment(0x64, b"\0\1part one DOE^JANE")
    first = tile_part(12 + len(first_header) + 2 + len(data), first_header, data)
    last_header = segment(0x58, bytes(6)) + segment(0x64, b"\0\1part two DOE^JANE")
    last = tile_part(0, last_header, data)  # Psot 0: up to EOC
    stream = main + first + last + b"\xff\xd9"
    result = blanked(stream, JPEG_2000)
    assert result.count(b"DOE^JANE") == 2  # the two in tile data
    assert result == stream.replace(b"\0\1main DOE^JANE", b"\0\1" + b" " * 13).replace(
        b"\0\1part one DOE^JANE", b"\0\1" + b" " * 17).replace(
        b"\0\1part two DOE^JANE", b"\0\1" + b" " * 17)


def test_a_jpeg_2000_tile_part_longer_than_its_stream_ends_the_walk():
    header = segment(0x64, b"\0\1DOE^JANE")
    stream = b"\xff\x4f" + segment(0x51, bytes(20)) + tile_part(10**6, header, b"\x00\x01")
    assert blanked(stream, JPEG_2000) == stream.replace(b"DOE^JANE", b" " * 8)


def test_tiles_whose_header_differs_from_the_first_tiles_are_walked_on_their_own():
    """Tiles with the first tile's very header are not walked again; any other is."""
    frame = segment(0xC0, bytes([8, 0, 16, 0, 16, 3]) + bytes(9))
    scan = segment(0xDA, bytes([3]) + bytes(9)) + b"\x12\x34\xff\xd9"
    plain = b"\xff\xd8" + frame + scan
    commented = b"\xff\xd8" + segment(0xFE, b"DOE^JANE") + frame + scan
    progressive = plain.replace(b"\xff\xc0", b"\xff\xc2") + segment(0xFE, b"DOE^JANE")
    progressive = progressive.replace(b"\xff\xd9", b"") + segment(0xDA, bytes([3]) + bytes(9)) \
        + b"\x56\xff\xd9"
    tiles = [plain] * 5 + [commented] + [plain] * 3 + [progressive] + [plain[:-3]]
    data = np.frombuffer(bytearray(b"".join(tiles)), np.uint8)
    ends = np.cumsum([len(tile) for tile in tiles])
    blank_header_text(data, ends - [len(tile) for tile in tiles], ends, JPEG)
    assert data.tobytes() == b"".join(tiles).replace(b"DOE^JANE", b" " * 8)
