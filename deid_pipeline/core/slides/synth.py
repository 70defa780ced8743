"""Synthetic Aperio SVS slides with realistic identifying metadata, written with tifffile.

The layout follows Aperio's: level 0 (tiled JPEG), the thumbnail (JPEG strips), the lower levels
(each `downsample` times smaller), the label (LZW strips; a barcode, the slide ID and the
patient's name) and the macro (JPEG strips; the whole glass slide, label included). Tiles are
JPEG in RGB colour space with their quantisation and Huffman tables in the JPEGTables tag, as
Aperio writes them, so a reader that loses the tag cannot decode a tile.

Tissue is drawn tile by tile (a smooth field of blobs, grain, nuclei), so no level is ever held
in memory: a slide of any size streams to disk.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import tifffile
from faker import Faker

from deid_pipeline.core.slides.label import render_label

SOFTWARE = "Aperio Image Library v12.0.15"
BACKGROUND = np.array([242, 242, 245], np.float32)
EOSIN = np.array([228, 150, 192], np.float32)
NUCLEUS = (92, 46, 128)
TISSUE_GRAIN, GLASS_GRAIN = 40.0, 4.0  # standard deviation of the texture, in grey levels
THUMBNAIL_SIDE = 1024
LABEL_SIZE = (420, 420)  # width, height
MACRO_SIZE = (1280, 420)
_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = b"\xff\xd8", b"\xff\xd9", b"\xff\xda"
_JPEG_TABLE_MARKERS = (b"\xff\xdb", b"\xff\xc4")  # DQT, DHT


def write_synthetic_slide(path: Path, *, seed: int, patient_name: str, slide_id: str,
                          date: datetime, width: int, height: int, tile: int = 256,
                          levels: int = 3, downsample: int = 4, quality: int = 70,
                          patient_id: str | None = None, tile_variants: int | None = None,
                          bigtiff: bool = False) -> Path:
    """Write an SVS slide of `width` x `height` pixels at level 0 and return its path.

    `patient_id` adds a `PatientID` key (the link to a patient). `tile_variants` draws only that
    many distinct tiles and repeats them: the fast way to make a slide of many gigabytes."""
    rng = random.Random(seed)
    identity = _scan_identity(rng, seed, patient_name, slide_id, date, patient_id)
    fields = _description_fields(rng, identity, width, height)
    tissue = _Tissue(seed, width, height)
    level_sizes = [(max(1, width // downsample ** n), max(1, height // downsample ** n))
                   for n in range(levels)]
    tables = _jpeg_tables(quality)
    tiff_tags = [(315, 2, 0, identity["operator"], True),  # Artist
                 (316, 2, 0, identity["host"], True),  # HostComputer
                 (269, 2, 0, f"{patient_name} {slide_id}.svs", True),  # DocumentName
                 (271, 2, 0, "Aperio", True), (272, 2, 0, "ScanScope AT2", True)]  # Make, Model
    scan_time = date.strftime("%Y:%m:%d %H:%M:%S")
    label = render_label([slide_id, patient_name], width=LABEL_SIZE[0], height=LABEL_SIZE[1],
                         barcode=slide_id)

    with tifffile.TiffWriter(path, bigtiff=bigtiff) as writer:
        for level, (level_width, level_height) in enumerate(level_sizes):
            scale = downsample ** level
            header = (f"{SOFTWARE} \r\n{width}x{height} [0,0 {width}x{height}] ({tile}x{tile})"
                      + (f" -> {level_width}x{level_height}" if level else "")
                      + f" JPEG/RGB Q={quality}")
            tiles = _encoded_tiles(tissue, level, scale, level_width, level_height, tile,
                                   quality, tables, tile_variants)
            writer.write(tiles, shape=(level_height, level_width, 3), dtype=np.uint8,
                         tile=(tile, tile), compression="jpeg", photometric="rgb",
                         subsampling=(1, 1), compressionargs={"outcolorspace": "rgb"},
                         jpegtables=tables, description="|".join([header, *fields]),
                         metadata=None, software=SOFTWARE, datetime=scan_time,
                         extratags=tiff_tags)
            if level == 0:
                _write_thumbnail(writer, tissue, width, height, quality, fields, scan_time)
        writer.write(label, photometric="rgb", compression="lzw", subfiletype=1,
                     description=f"{SOFTWARE}\r\nlabel {LABEL_SIZE[0]}x{LABEL_SIZE[1]}",
                     metadata=None, software=False)
        writer.write(_macro(tissue, label), photometric="rgb", compression="jpeg",
                     compressionargs={"level": quality}, subfiletype=9, metadata=None,
                     software=False,
                     description=f"{SOFTWARE}\r\nmacro {MACRO_SIZE[0]}x{MACRO_SIZE[1]}")
    return Path(path)


def _scan_identity(rng: random.Random, seed: int, patient_name: str, slide_id: str,
                   date: datetime, patient_id: str | None) -> dict[str, str]:
    faker = Faker("en_US")
    faker.seed_instance(seed)
    scanner = f"SS{rng.randint(1000, 9999)}"
    return {
        "scanner": scanner,
        "host": f"{scanner}-{faker.city().replace(' ', '')}".upper(),
        "operator": faker.name(),
        "filename": str(rng.randint(10_000, 99_999)),
        "user": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "date": date.strftime("%m/%d/%y"),
        "time": date.strftime("%H:%M:%S"),
        "dsr": f"aperio-dsr-{rng.randint(10, 99)}",
        "image_id": str(rng.randint(100_000, 999_999)),
        "title": f"{slide_id} {patient_name}",
        "slide_id": slide_id,
        "patient_id": patient_id or "",
    }


def _description_fields(rng: random.Random, identity: dict[str, str], width: int,
                        height: int) -> list[str]:
    fields = [
        ("AppMag", "20"), ("StripeWidth", "2040"), ("ScanScope ID", identity["scanner"]),
        ("Filename", identity["filename"]), ("Date", identity["date"]),
        ("Time", identity["time"]), ("Time Zone", "GMT-05:00"), ("User", identity["user"]),
        ("MPP", "0.4990"), ("Left", f"{rng.uniform(20, 30):.6f}"),
        ("Top", f"{rng.uniform(15, 25):.6f}"),
        ("LineCameraSkew", f"{rng.uniform(-1e-3, 1e-3):.6f}"),
        ("LineAreaXOffset", f"{rng.uniform(0, 0.05):.6f}"),
        ("LineAreaYOffset", f"{rng.uniform(-1e-3, 0):.6f}"), ("Focus Offset", "0.000000"),
        ("DSR ID", identity["dsr"]), ("ImageID", identity["image_id"]),
        ("Exposure Time", "109"), ("Exposure Scale", "0.000001"), ("DisplayColor", "0"),
        ("OriginalWidth", str(width)), ("OriginalHeight", str(height)),
        ("ICC Profile", "ScanScope v1"), ("Title", identity["title"]),
        ("Barcode", identity["slide_id"]), ("SlideId", identity["slide_id"]),
        ("Rack", str(rng.randint(1, 12))), ("Slide", str(rng.randint(1, 40))),
    ]
    if identity["patient_id"]:
        fields.append(("PatientID", identity["patient_id"]))
    return [f"{key} = {value}" for key, value in fields]


class _Tissue:
    """Pink tissue blobs with purple nuclei on a near-white background, in level-0 pixels."""

    def __init__(self, seed: int, width: int, height: int) -> None:
        rng = np.random.default_rng(seed)
        self.seed, self.width, self.height = seed, width, height
        count = int(rng.integers(3, 7))
        self.centres = rng.uniform(0.15, 0.85, (count, 2)) * (width, height)
        self.radii = rng.uniform(0.1, 0.25, (count, 2)) * (width, height)

    def render(self, x0: int, y0: int, scale: int, width: int, height: int) -> np.ndarray:
        """`width` x `height` pixels whose top-left pixel is level-0 (x0, y0), one per `scale`
        level-0 pixels."""
        xs = x0 + (np.arange(width, dtype=np.float32) + 0.5) * scale
        ys = y0 + (np.arange(height, dtype=np.float32) + 0.5) * scale
        field = np.zeros((height, width), np.float32)
        for (cx, cy), (rx, ry) in zip(self.centres, self.radii, strict=True):
            fx = np.exp(-(((xs - cx) / rx) ** 2))
            fy = np.exp(-(((ys - cy) / ry) ** 2))
            field = np.maximum(field, fy[:, None] * fx[None, :])
        mask = np.clip((field - 0.35) * 4, 0, 1)[..., None]
        # Texture and nuclei are seeded by position, so one tile always looks the same. The
        # grain (strong in tissue, faint on glass) gives JPEG tiles the size real ones have.
        rng = np.random.default_rng([self.seed, x0, y0, scale])
        grain = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 0.8)
        amplitude = GLASS_GRAIN + (TISSUE_GRAIN - GLASS_GRAIN) * mask
        image = np.clip(BACKGROUND * (1 - mask) + EOSIN * mask + grain[..., None] * amplitude,
                        0, 255).astype(np.uint8)
        count = int(mask.mean() * width * height * scale / 600)
        radius = max(1, round(4 / scale))
        for x, y in rng.uniform(0, 1, (count, 2)) * (width, height):
            if mask[int(y), int(x), 0] > 0.5:
                cv2.circle(image, (int(x), int(y)), radius, NUCLEUS, -1, cv2.LINE_AA)
        return image


def _encoded_tiles(tissue: _Tissue, level: int, scale: int, width: int, height: int, tile: int,
                   quality: int, tables: bytes, tile_variants: int | None) -> Iterator[bytes]:
    """The level's tiles, row by row, as JPEG streams without their tables. With
    `tile_variants`, tiles drawn at random places of the level stand in for all of them."""
    rows, columns = math.ceil(height / tile), math.ceil(width / tile)

    def encoded(tx: int, ty: int) -> bytes:
        return _encode_tile(tissue, tx * tile * scale, ty * tile * scale, scale, tile, quality,
                            tables)

    if tile_variants is None:
        for ty in range(rows):
            for tx in range(columns):
                yield encoded(tx, ty)
        return
    places = np.random.default_rng([tissue.seed, level]).integers(0, (columns, rows),
                                                                   (tile_variants, 2))
    pool = [encoded(int(tx), int(ty)) for tx, ty in places]
    for ty in range(rows):
        for tx in range(columns):
            yield pool[_variant(level, ty, tx, tile_variants)]


def _variant(level: int, ty: int, tx: int, variants: int) -> int:
    digest = hashlib.blake2b(struct.pack("<3q", level, ty, tx), digest_size=8).digest()
    return int.from_bytes(digest, "little") % variants


def _encode_tile(tissue: _Tissue, x0: int, y0: int, scale: int, tile: int, quality: int,
                 tables: bytes) -> bytes:
    pixels = tissue.render(x0, y0, scale, tile, tile)
    tile_tables, abbreviated = _split_jpeg_tables(_encode_rgb_jpeg(pixels, quality))
    if tile_tables != tables:  # JPEGTables holds one set of tables for every tile of a page
        raise RuntimeError("the JPEG encoder changed its tables between tiles")
    return abbreviated


def _encode_rgb_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    return imagecodecs.jpeg8_encode(pixels, level=quality, colorspace="RGB", outcolorspace="RGB")


def _jpeg_tables(quality: int) -> bytes:
    return _split_jpeg_tables(_encode_rgb_jpeg(np.zeros((16, 16, 3), np.uint8), quality))[0]


def _split_jpeg_tables(stream: bytes) -> tuple[bytes, bytes]:
    """(tables-only JPEG, abbreviated JPEG): the DQT and DHT segments moved out of `stream`, the
    form TIFF's JPEGTables tag and its tiles take (TIFF Technical Note 2)."""
    tables, image = [_JPEG_SOI], [_JPEG_SOI]
    position = len(_JPEG_SOI)
    while stream[position:position + 2] != _JPEG_SOS:
        (length,) = struct.unpack(">H", stream[position + 2:position + 4])
        segment = stream[position:position + 2 + length]
        (tables if segment[:2] in _JPEG_TABLE_MARKERS else image).append(segment)
        position += 2 + length
    image.append(stream[position:])
    tables.append(_JPEG_EOI)
    return b"".join(tables), b"".join(image)


def _write_thumbnail(writer: tifffile.TiffWriter, tissue: _Tissue, width: int, height: int,
                     quality: int, fields: list[str], scan_time: str) -> None:
    scale = max(1, math.ceil(max(width, height) / THUMBNAIL_SIDE))
    thumbnail = tissue.render(0, 0, scale, width // scale, height // scale)
    header = f"{SOFTWARE} \r\n{width}x{height} -> {width // scale}x{height // scale} - "
    writer.write(thumbnail, photometric="rgb", compression="jpeg",
                 compressionargs={"level": quality}, rowsperstrip=16,
                 description="|".join([header, *fields]), metadata=None, software=SOFTWARE,
                 datetime=scan_time)


def _macro(tissue: _Tissue, label: np.ndarray) -> np.ndarray:
    """The whole glass slide photographed from above: label at the left, tissue to its right."""
    macro_width, macro_height = MACRO_SIZE
    macro = np.full((macro_height, macro_width, 3), 215, np.uint8)
    label_side = macro_height - 20
    macro[10:10 + label_side, 10:10 + label_side] = cv2.resize(label, (label_side, label_side),
                                                               interpolation=cv2.INTER_AREA)
    area = (macro_width - label_side - 40, macro_height - 20)
    scale = max(1, math.ceil(max(tissue.width / area[0], tissue.height / area[1])))
    overview = tissue.render(0, 0, scale, area[0], area[1])
    macro[10:10 + area[1], label_side + 30:label_side + 30 + area[0]] = overview
    return macro
