"""Recall by modality as a small PNG bar chart, one bar per detector setting, drawn with Pillow
(already installed for OCR) rather than a plotting library."""

from __future__ import annotations

import io

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 480, 260
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 34, 24  # margins around the plot area
BAR_SHARE = 0.8  # of a modality's slot; the rest separates modalities
COLOURS = [(31, 119, 180), (174, 199, 232), (255, 127, 14), (44, 160, 44)]
GRID = (220, 220, 220)
INK = (0, 0, 0)


def recall_chart(metrics: pd.DataFrame) -> bytes:
    """PNG bytes of `metrics` (pixel_table.metrics_frame) recall, modalities in table order."""
    modalities = list(dict.fromkeys(metrics["modality"]))
    settings = list(dict.fromkeys(metrics["setting"]))
    recall = metrics.set_index(["setting", "modality"])["recall"]
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM

    def y_of(value: float) -> float:
        return y1 - value * (y1 - y0)

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line([(x0, y_of(tick)), (x1, y_of(tick))], fill=GRID)
        draw.text((x0 - 4, y_of(tick)), f"{tick:.2f}", fill=INK, font=font, anchor="rm")
    slot = (x1 - x0) / max(len(modalities), 1)
    bar = slot * BAR_SHARE / max(len(settings), 1)
    for i, modality in enumerate(modalities):
        left = x0 + i * slot + slot * (1 - BAR_SHARE) / 2
        for j, setting in enumerate(settings):
            value = float(recall.get((setting, modality), 0.0))
            draw.rectangle([left + j * bar, y_of(value), left + (j + 1) * bar - 1, y1],
                           fill=COLOURS[j % len(COLOURS)])
        draw.text((x0 + (i + 0.5) * slot, y1 + 4), modality, fill=INK, font=font, anchor="mt")
    draw.line([(x0, y0), (x0, y1), (x1, y1)], fill=INK)
    draw.text((x0, 4), "recall by modality", fill=INK, font=font)
    legend_x = x0 + 130
    for j, setting in enumerate(settings):
        draw.rectangle([legend_x, 6, legend_x + 9, 15], fill=COLOURS[j % len(COLOURS)])
        draw.text((legend_x + 13, 4), setting, fill=INK, font=font)
        legend_x += 20 + draw.textlength(setting, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
