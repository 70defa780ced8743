"""The pixels of one planned image: background, burned-in text, then the stored colour space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.pixels import convert_color_space

from deid_pipeline.core.synth import burn_in, pixels
from deid_pipeline.core.synth.overlay import compose_overlay
from deid_pipeline.core.synth.plan import InstancePlan, SeriesPlan, StudyPlan


@dataclass(frozen=True)
class RenderedImage:
    # (frames, rows, columns, samples) stored values before and after the text; colour as RGB
    background: np.ndarray
    drawn: np.ndarray
    pixels: np.ndarray  # pixel_array shaped, in the series' Photometric Interpretation
    lines: tuple[burn_in.PlacedLine, ...]


def render_image(study: StudyPlan, series: SeriesPlan, instance: InstancePlan) -> RenderedImage:
    spec, template = series.pixels, series.template
    rng = np.random.default_rng(instance.pixel_seed)
    position = (instance.number - 1) / max(1, len(series.instances) - 1)
    background = pixels.background(template.anatomy, spec, rng, position, instance.view,
                                   template.header_band)
    drawn = background.copy()
    overlay = compose_overlay(study, series, instance)
    lines: list[burn_in.PlacedLine] = []
    if overlay is not None:
        band = pixels.header_band_rows(spec.rows) if template.header_band else 0
        lines = burn_in.burn(drawn, spec, overlay.blocks, overlay.style, band)
    stored = drawn
    if spec.photometric == "YBR_FULL":
        stored = convert_color_space(drawn.astype(np.uint8), "RGB", "YBR_FULL")
    container = np.dtype(f"{'i' if spec.signed else 'u'}{spec.bits_allocated // 8}")
    shaped = stored.astype(container).reshape(spec.shape)
    return RenderedImage(background, drawn, shaped, tuple(lines))
