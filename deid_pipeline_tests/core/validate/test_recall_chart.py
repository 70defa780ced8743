import io

import pandas as pd
from PIL import Image

from deid_pipeline.core.validate.recall_chart import (
    BAR_SHARE,
    BOTTOM,
    COLOURS,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    recall_chart,
)


def test_bar_heights_follow_recall_per_modality():
    metrics = pd.DataFrame({"setting": ["redact PHI"] * 2, "modality": ["all", "US"],
                            "recall": [1.0, 0.5]})

    image = Image.open(io.BytesIO(recall_chart(metrics))).convert("RGB")

    assert image.size == (WIDTH, HEIGHT)
    slot = (WIDTH - RIGHT - LEFT) / 2
    bottom, top = HEIGHT - BOTTOM, TOP
    half = bottom - 0.5 * (bottom - top)
    for index, recall in enumerate([1.0, 0.5]):
        x = int(LEFT + index * slot + slot * (1 - BAR_SHARE) / 2 + slot * BAR_SHARE / 2)
        column = [image.getpixel((x, y)) for y in range(top + 2, bottom - 1)]
        bar = [y for y, colour in zip(range(top + 2, bottom - 1), column, strict=True)
               if colour == COLOURS[0]]
        expected_top = top if recall == 1.0 else half
        assert abs(min(bar) - expected_top) <= 2, (index, min(bar))
        assert max(bar) == bottom - 2


def test_the_same_table_draws_the_same_bytes():
    metrics = pd.DataFrame({"setting": ["redact PHI", "redact all text"], "modality": ["all"] * 2,
                            "recall": [0.9, 1.0]})
    png = recall_chart(metrics)
    assert png.startswith(b"\x89PNG") and png == recall_chart(metrics)
