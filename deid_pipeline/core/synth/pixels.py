"""Anatomy-like backgrounds: smooth shapes, gradients, texture and noise, one generator per kind.

Generators draw brightness in [0, 1] (NaN outside a CT's reconstruction circle); `background`
turns it into stored values for the series' pixel description. Palette images are drawn as
indices into `PALETTE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from deid_pipeline.core.synth.plan import PixelSpec

# Palette of the colour-Doppler images: a grey ramp, a red-to-yellow flow ramp (towards the
# probe), a blue ramp (away from it), and bright entries devices use for text.
GREY_ENTRIES = 200
RED_FLOW = range(200, 240)
BLUE_FLOW = range(240, 252)
PALETTE_YELLOW = 254
PALETTE_WHITE = 255
PALETTE_BITS = 16
CT_FULL_SCALE = 4095  # stored value of HU 3071 with Rescale Intercept -1024
CT_PADDING = -2000  # Pixel Padding Value outside the reconstruction circle of signed CT
HEADER_BAND_LEVEL = 0.1


def palette_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Red, green and blue lookup tables (256 entries of 16 bits)."""
    red, green, blue = (np.zeros(256) for _ in range(3))
    ramp = np.linspace(0, 1, GREY_ENTRIES)
    red[:GREY_ENTRIES] = green[:GREY_ENTRIES] = blue[:GREY_ENTRIES] = ramp
    flow = np.linspace(0, 1, len(RED_FLOW))
    red[RED_FLOW.start:RED_FLOW.stop] = 0.5 + 0.5 * flow
    green[RED_FLOW.start:RED_FLOW.stop] = flow**2
    blue_ramp = np.linspace(0.4, 1, len(BLUE_FLOW))
    blue[BLUE_FLOW.start:BLUE_FLOW.stop] = blue_ramp
    green[BLUE_FLOW.start:BLUE_FLOW.stop] = 0.5 * blue_ramp
    red[PALETTE_YELLOW] = green[PALETTE_YELLOW] = 1
    red[PALETTE_WHITE] = green[PALETTE_WHITE] = blue[PALETTE_WHITE] = 1
    scale = 2**PALETTE_BITS - 1
    return tuple(np.rint(table * scale).astype(np.uint16) for table in (red, green, blue))


def header_band_rows(rows: int) -> int:
    return max(16, rows // 14)


def background(anatomy: str, spec: PixelSpec, rng: np.random.Generator, position: float,
               view: str | None, header_band: bool) -> np.ndarray:
    """Stored values, shaped (frames, rows, columns, samples), int32.

    `position` in [0, 1] is the image's place in its series (slice level, acquisition order).
    """
    draw, full_scale = GENERATORS[anatomy]
    shade = draw(rng, spec, position, view or "")
    palette = spec.photometric == "PALETTE COLOR"
    if header_band:
        level = round(HEADER_BAND_LEVEL * (GREY_ENTRIES - 1)) if palette else HEADER_BAND_LEVEL
        shade[:, :header_band_rows(spec.rows)] = level
    if palette:
        return shade[..., None].astype(np.int32)
    if shade.ndim == 3:
        shade = shade[..., None]
    return _stored(shade, spec, full_scale)


def _stored(shade: np.ndarray, spec: PixelSpec, full_scale: int | None) -> np.ndarray:
    low, high = spec.value_range
    scale = full_scale or int(high * 0.95)
    padding = np.isnan(shade)
    shade = np.clip(np.nan_to_num(shade), 0, 1)
    if spec.photometric == "MONOCHROME1":
        shade = 1 - shade
    stored = np.rint(shade * scale).astype(np.int32)
    stored[padding] = CT_PADDING if spec.signed else 0
    return np.clip(stored, low, high)


def _grid(rows: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates scaled so that the image height spans [-1, 1]."""
    half = rows / 2
    y = ((np.arange(rows, dtype=np.float32) + 0.5 - half) / half)[:, None]
    x = ((np.arange(columns, dtype=np.float32) + 0.5 - columns / 2) / half)[None, :]
    return y, x


@dataclass(frozen=True)
class _Mask:
    """Coverage (0-1) of a shape inside its bounding box: painting touches only the box."""

    rows: slice
    columns: slice
    weight: np.ndarray

    @classmethod
    def whole(cls, weight: np.ndarray) -> _Mask:
        return cls(slice(None), slice(None), weight.astype(np.float32))

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        canvas = np.zeros(shape, np.float32)
        canvas[self.rows, self.columns] = self.weight
        return canvas


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float,
             edge: float = 0.02) -> _Mask:
    """A filled ellipse with a soft rim: 1 inside, 0 outside."""
    inside_y = np.nonzero(np.abs(y[:, 0] - cy) <= ry)[0]
    inside_x = np.nonzero(np.abs(x[0] - cx) <= rx)[0]
    if not inside_y.size or not inside_x.size:
        return _Mask(slice(0, 0), slice(0, 0), np.zeros((0, 0), np.float32))
    rows = slice(int(inside_y[0]), int(inside_y[-1]) + 1)
    columns = slice(int(inside_x[0]), int(inside_x[-1]) + 1)
    radius = np.sqrt(((x[:, columns] - cx) / rx) ** 2 + ((y[rows] - cy) / ry) ** 2)
    return _Mask(rows, columns, np.clip((1 - radius) / edge, 0, 1))


def _paint(shade: np.ndarray, mask: _Mask, value: np.ndarray | float) -> np.ndarray:
    """Blend `value` (a constant or an image-sized array) into `shade` under `mask`, in place."""
    region = shade[mask.rows, mask.columns]
    if isinstance(value, np.ndarray):
        value = value[mask.rows, mask.columns]
    shade[mask.rows, mask.columns] = region + (value - region) * mask.weight
    return shade


def _texture(rng: np.random.Generator, rows: int, columns: int, sigma: float) -> np.ndarray:
    """Smooth random texture with unit standard deviation.

    Coarse textures are drawn at a reduced size and enlarged: the blur leaves nothing finer than
    sigma anyway, and full-size draws dominated the generation time.
    """
    step = max(1, int(sigma // 2))
    small = (max(2, -(-rows // step)), max(2, -(-columns // step)))
    noise = cv2.GaussianBlur(rng.standard_normal(small, dtype=np.float32), (0, 0), sigma / step)
    if step > 1:
        noise = cv2.resize(noise, (columns, rows), interpolation=cv2.INTER_CUBIC)
    return noise / max(float(noise.std()), 1e-6)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sd)


def _frames(image: np.ndarray, spec: PixelSpec) -> np.ndarray:
    return np.repeat(image[None], spec.frames, axis=0)


def _ct_chest(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    hu = np.full((rows, columns), -1000, np.float32)
    hu = _paint(hu, _ellipse(y, x, 0.05, 0, 0.62, 0.85), -100.0)
    hu = _paint(hu, _ellipse(y, x, 0.05, 0, 0.55, 0.77), 40 + 8 * _texture(rng, rows, columns, 6))
    level = 1 - 0.5 * abs(position - 0.5)
    lung = -850 + 40 * _texture(rng, rows, columns, 2)
    for side in (-1, 1):
        hu = _paint(hu, _ellipse(y, x, -0.02, 0.36 * side, 0.42 * level, 0.27 * level), lung)
    hu = _paint(hu, _ellipse(y, x, 0.1, 0.08, 0.22 * level, 0.25), 45.0)
    hu = _paint(hu, _ellipse(y, x, -0.12, 0.1, 0.07, 0.07), 220.0)
    hu = _paint(hu, _ellipse(y, x, 0.42, 0, 0.11, 0.1), 700.0)
    hu = _paint(hu, _ellipse(y, x, 0.42, 0, 0.07, 0.065), 250.0)
    hu = _paint(hu, _Mask.whole((y > 0.8) & (y < 0.84) & (abs(x) < 0.9)), 150.0)
    hu = cv2.GaussianBlur(hu + _noise(rng, hu.shape, 15), (0, 0), 0.8)
    shade = (hu + 1024) / CT_FULL_SCALE
    shade[np.sqrt(y**2 + x**2) > 0.98] = np.nan  # outside the reconstruction circle
    return _frames(shade, spec)


def _ct_scout(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    shade = np.full((rows, columns), 0.02, np.float32)
    shade = _paint(shade, _ellipse(y, x, 0.1, 0, 1.3, 0.62, 0.1), 0.35)
    for side in (-1, 1):
        shade = _paint(shade, _ellipse(y, x, -0.2, 0.26 * side, 0.45, 0.22, 0.15), 0.15)
    spine = np.broadcast_to(abs(x) < 0.06, shade.shape) * _ellipse(y, x, 0, 0, 2, 1).full(shade.shape)
    shade = _paint(shade, _Mask.whole(spine), 0.55)
    shade += 0.03 * _texture(rng, rows, columns, 4)
    return _frames(cv2.GaussianBlur(shade, (0, 0), 2), spec)


def _mr_brain_axial(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    size = np.sqrt(1 - 0.6 * (2 * position - 1) ** 2)
    shade = np.zeros((rows, columns), np.float32)
    shade = _paint(shade, _ellipse(y, x, 0, 0, 0.9 * size, 0.74 * size), 0.55)
    shade = _paint(shade, _ellipse(y, x, 0, 0, 0.85 * size, 0.69 * size), 0.05)
    shade = _paint(shade, _ellipse(y, x, 0, 0, 0.8 * size, 0.64 * size),
                   0.42 + 0.03 * _texture(rng, rows, columns, 3))
    shade = _paint(shade, _ellipse(y, x, 0, 0, 0.55 * size, 0.44 * size, 0.1), 0.3)
    for side in (-1, 1):
        shade = _paint(shade, _ellipse(y, x, -0.05, 0.08 * side, 0.18 * size, 0.05), 0.85)
    return _frames(_rician(rng, shade, 0.02), spec)


def _mr_brain_sagittal(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    shade = np.zeros((rows, columns), np.float32)
    shade = _paint(shade, _ellipse(y, x, -0.05, 0.05, 0.8, 0.9), 0.7)
    shade = _paint(shade, _ellipse(y, x, -0.05, 0.05, 0.74, 0.84), 0.08)
    shade = _paint(shade, _ellipse(y, x, -0.1, 0.08, 0.66, 0.78),
                   0.5 + 0.04 * _texture(rng, rows, columns, 3))
    shade = _paint(shade, _ellipse(y, x, 0.45, 0.35, 0.2, 0.25, 0.05), 0.45)
    shade = _paint(shade, _ellipse(y, x, 0.5, 0.05, 0.4, 0.08, 0.08), 0.55)
    shade = _paint(shade, _ellipse(y, x, -0.05, 0.1, 0.1, 0.3 * (1.2 - position)), 0.1)
    return _frames(_rician(rng, shade, 0.02), spec)


def _rician(rng: np.random.Generator, shade: np.ndarray, sd: float) -> np.ndarray:
    """Magnitude MR noise: dark background stays noisy but never negative."""
    return np.sqrt((shade + _noise(rng, shade.shape, sd)) ** 2 + _noise(rng, shade.shape, sd) ** 2)


def _xr_chest(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    shade = np.full((rows, columns), 0.06, np.float32)
    shade = _paint(shade, _ellipse(y, x, 0.15, 0, 1.0, 0.82, 0.08),
                   0.45 + 0.03 * _texture(rng, rows, columns, 8))
    lung = 0.2 + 0.04 * _texture(rng, rows, columns, 1.5)
    if view == "LAT":
        shade = _paint(shade, _ellipse(y, x, -0.05, 0, 0.6, 0.45, 0.1), lung)
        shade = _paint(shade, _ellipse(y, x, 0.1, 0.55, 0.9, 0.08, 0.1), 0.65)
    else:
        for side in (-1, 1):
            shade = _paint(shade, _ellipse(y, x, -0.05, 0.33 * side, 0.55, 0.25, 0.08), lung)
        shade = _paint(shade, _ellipse(y, x, 0.22, 0.06, 0.32, 0.22, 0.1), 0.6)
        shade = _paint(shade, _Mask.whole(np.broadcast_to(abs(x) < 0.06, shade.shape)), 0.62)
    ribs = np.zeros((rows, columns), np.uint8)
    for rib in range(9):
        centre = (columns // 2, int(rows * (0.12 + 0.075 * rib)))
        axes = (int(rows * 0.36), int(rows * 0.09))
        cv2.ellipse(ribs, centre, axes, 0, 200, 340, 255, max(2, rows // 90))
    shade += 0.12 * ribs.astype(np.float32) / 255
    return _frames(cv2.GaussianBlur(shade, (0, 0), 1.5), spec)


def _xr_hand(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    tissue = np.zeros((rows, columns), np.uint8)
    bone = np.zeros((rows, columns), np.uint8)
    spread = {"PA": 1.0, "OBL": 0.7, "LAT": 0.35}.get(view, 1.0)
    wrist = (columns // 2, int(rows * 0.92))
    cv2.ellipse(tissue, (columns // 2, int(rows * 0.68)), (int(columns * 0.3 * spread + 20),
                int(rows * 0.2)), 0, 0, 360, 255, -1)
    for finger in range(5):
        angle = np.deg2rad(-50 + finger * 25 * spread)
        length = rows * (0.38 if finger else 0.26)
        base = (columns // 2 + int((finger - 2) * columns * 0.09 * spread), int(rows * 0.55))
        tip = (int(base[0] + length * np.sin(angle) * 0.5), int(base[1] - length * np.cos(angle)))
        cv2.line(tissue, base, tip, 255, max(8, columns // 11))
        cv2.line(bone, base, tip, 255, max(4, columns // 28))
        cv2.line(bone, wrist, base, 255, max(3, columns // 34))
    shade = 0.05 + 0.3 * tissue.astype(np.float32) / 255
    shade += 0.4 * bone.astype(np.float32) / 255 * (1 + 0.1 * _texture(rng, rows, columns, 2))
    return _frames(cv2.GaussianBlur(shade, (0, 0), 1.2), spec)


def _mammo(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    wall = -columns / rows if view.startswith("R") else columns / rows
    shade = np.zeros((rows, columns), np.float32)
    breast = _ellipse(y, x, 0, wall, 0.9, 1.25, 0.03).full((rows, columns))
    tissue = 0.35 + 0.12 * np.clip(_texture(rng, rows, columns, 10), -1, 2)
    tissue += 0.04 * _texture(rng, rows, columns, 1.5)
    shade = _paint(shade, _Mask.whole(breast), tissue)
    if "MLO" in view:
        pectoral = np.clip((0.6 - (y + 1) - abs(x - wall) * 0.8) * 8, 0, 1) * breast
        shade = _paint(shade, _Mask.whole(pectoral), 0.7)
    return _frames(shade, spec)


def _fan(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The sector of a curved-array probe, apex above the top edge."""
    depth = np.sqrt((y + 1.15) ** 2 + x**2)
    angle = np.arctan2(x, y + 1.15)
    return ((depth > 0.25) & (depth < 2.05) & (abs(angle) < 0.62)).astype(np.float32)


def _us_grey(rng: np.random.Generator, spec: PixelSpec, parenchyma: np.ndarray,
             frame: int) -> np.ndarray:
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    wobble = 0.02 * np.sin(frame * 0.8)  # breathing moves the organs between cine frames
    organ = _paint(parenchyma.copy(), _ellipse(y, x, 0.2 + wobble, -0.25, 0.22, 0.32, 0.1), 0.05)
    organ = _paint(organ, _ellipse(y, x, 0.55, 0.3 + wobble, 0.25, 0.4, 0.2), 0.7)
    speckle = rng.rayleigh(0.6, (rows, columns)).astype(np.float32)
    attenuation = np.clip(1.1 - 0.35 * (y + 1), 0.3, 1)
    return np.clip(organ * speckle * attenuation * _fan(y, x), 0, 1)


def _parenchyma(rng: np.random.Generator, spec: PixelSpec) -> np.ndarray:
    return 0.45 + 0.12 * _texture(rng, spec.rows, spec.columns, spec.rows / 20)


def _us_abdomen(rng, spec, position, view):
    parenchyma = _parenchyma(rng, spec)
    grey = np.stack([_us_grey(rng, spec, parenchyma, frame) for frame in range(spec.frames)])
    return np.stack([grey, grey, grey * 0.94], axis=-1)


def _us_doppler(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    indices = np.rint(_us_grey(rng, spec, _parenchyma(rng, spec), 0) * (GREY_ENTRIES - 1))
    towards = _ellipse(y, x, 0.1, -0.1, 0.5, 0.05, 0.2).full((rows, columns)) > 0.5
    away = _ellipse(y, x, 0.15, 0.12, 0.45, 0.04, 0.2).full((rows, columns)) > 0.5
    speed = np.clip(0.5 + 0.25 * _texture(rng, rows, columns, 3), 0, 0.999)
    indices[towards] = RED_FLOW.start + np.floor(speed[towards] * len(RED_FLOW))
    indices[away] = BLUE_FLOW.start + np.floor(speed[away] * len(BLUE_FLOW))
    return indices[None].astype(np.float32)


def _xa_coronary(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    base = 0.72 + 0.06 * _texture(rng, rows, columns, 20) - 0.1 * (y + 1) / 2
    vessels = np.zeros((rows, columns), np.uint8)
    for _ in range(3):
        point = np.array([columns * rng.uniform(0.3, 0.5), rows * rng.uniform(0.15, 0.3)])
        heading = rng.uniform(0.3, 1.3)
        width = max(3, columns // 60)
        for _ in range(25):
            heading += rng.normal(0, 0.25)
            step = point + rows * 0.03 * np.array([np.cos(heading), np.sin(heading)])
            cv2.line(vessels, tuple(int(v) for v in point), tuple(int(v) for v in step), 255,
                     width)
            point = step
            width = max(1, width - int(rng.random() < 0.2))
    iris = _ellipse(y, x, 0, 0, 1.05, 1.05, 0.05).full((rows, columns))
    frames = []
    for frame in range(spec.frames):
        fill = min(1.0, (frame + 1) / (0.6 * spec.frames))  # contrast arriving
        shift = np.float32([[1, 0, 2 * np.sin(frame)], [0, 1, 2 * np.cos(frame)]])
        moved = cv2.warpAffine(vessels, shift, (columns, rows)).astype(np.float32) / 255
        shade = base - 0.45 * fill * cv2.GaussianBlur(moved, (0, 0), 1)
        shade = shade * iris + 0.04 * (1 - iris) + _noise(rng, shade.shape, 0.015)
        frames.append(shade)
    return np.stack(frames)


def _sc_dose(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    image = np.zeros((rows, columns, 3), np.float32)
    image[:] = (0.1, 0.12, 0.16)
    image[rows // 6:rows * 5 // 6, columns // 10:columns * 9 // 10] = (0.2, 0.22, 0.28)
    for row in range(rows // 6, rows * 5 // 6, max(8, rows // 20)):
        image[row, columns // 10:columns * 9 // 10] = (0.35, 0.37, 0.42)
    for bar in range(5):
        height = int(rows * rng.uniform(0.1, 0.3))
        left = columns // 5 + bar * columns // 9
        image[rows * 3 // 4 - height:rows * 3 // 4, left:left + columns // 16] = (0.85, 0.45, 0.1)
    return image[None]


def _sc_render(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    y, x = _grid(rows, columns)
    # (height, radius, depth offset, colour): vertebrae, pelvis and the aorta
    bodies = [(-0.8 + 0.25 * k, 0.1, 0.0, (0.9, 0.86, 0.75)) for k in range(7)]
    bodies += [(0.85, 0.35, 0.2, (0.92, 0.88, 0.78)), (0.0, 0.12, -0.35, (0.8, 0.12, 0.1))]
    frames = []
    for frame in range(spec.frames):
        angle = 2 * np.pi * frame / spec.frames
        image = np.zeros((rows, columns, 3), np.float32)
        depth = np.full((rows, columns), -np.inf, np.float32)
        for height, radius, offset, colour in bodies:
            centre_x, centre_z = offset * np.sin(angle), offset * np.cos(angle)
            r2 = ((x - centre_x) ** 2 + (y - height) ** 2) / radius**2
            z = np.sqrt(np.clip(1 - r2, 0, None)) * radius + centre_z
            visible = (r2 < 1) & (z > depth)
            light = 0.25 + 0.75 * np.sqrt(np.clip(1 - r2, 0, 1))
            image[visible] = np.asarray(colour, np.float32) * light[visible, None]
            depth[visible] = z[visible]
        frames.append(image)
    return np.stack(frames)


def _sc_document(rng, spec, position, view):
    rows, columns = spec.rows, spec.columns
    paper = 0.93 + _noise(rng, (rows, columns), 0.015)
    for row in range(rows // 5, rows, max(12, rows // 12)):
        paper[row, columns // 12:columns * 11 // 12] = 0.55
    paper[rows // 20:rows // 20 + rows // 12, columns * 3 // 4:columns * 11 // 12] = 0.15
    return paper[None]


Generator = Callable[[np.random.Generator, PixelSpec, float, str], np.ndarray]
# Generator and the stored value that brightness 1 maps to (None: 95% of the stored range).
GENERATORS: dict[str, tuple[Generator, int | None]] = {
    "ct_chest": (_ct_chest, CT_FULL_SCALE),
    "ct_scout": (_ct_scout, CT_FULL_SCALE),
    "mr_brain_axial": (_mr_brain_axial, 2000),
    "mr_brain_sagittal": (_mr_brain_sagittal, 2000),
    "xr_chest": (_xr_chest, None),
    "xr_hand": (_xr_hand, None),
    "mammo": (_mammo, None),
    "us_abdomen": (_us_abdomen, None),
    "us_doppler": (_us_doppler, None),
    "xa_coronary": (_xa_coronary, None),
    "sc_dose": (_sc_dose, None),
    "sc_render": (_sc_render, None),
    "sc_document": (_sc_document, None),
}
