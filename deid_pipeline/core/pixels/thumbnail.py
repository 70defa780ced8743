"""A small picture of an image for a person to glance at (run metadata): its first frame as it
displays, 8-bit, shrunk and blurred so that no text is legible in it, redacted or missed by the
OCR (run metadata can be kept where the outputs are not): the filled boxes show where PHI was,
the anatomy its shape."""

from __future__ import annotations

import cv2
import numpy as np
from pydicom.dataset import Dataset

from deid_pipeline.core.pixels.views import reading_views, samples_per_pixel
from deid_pipeline.core.transcode import decode_pixels

MAX_WIDTH = 128
# At most 128 px wide, burned-in glyphs of a 512 px image are 3–4 px tall; a blur of this sigma
# (thumbnail pixels) merges them into smudges. Larger text of smaller images is blurred alike.
BLUR_SIGMA = 2.0


def thumbnail_png(ds: Dataset, max_width: int = MAX_WIDTH) -> bytes:
    """PNG of the first frame of `ds`, at most `max_width` pixels wide and blurred: the full
    value range (MONOCHROME1 inverted, colour as colour), so a filled box shows black."""
    pixels = decode_pixels(ds)
    frame = pixels if pixels.ndim == (2 if samples_per_pixel(ds) == 1 else 3) else pixels[0]
    views = reading_views(frame, ds, names=("full", "color"))
    # A flat frame has no view: nothing but the one value, shown black.
    image = views[0].image if views else np.zeros(frame.shape[:2], np.uint8)
    rows, columns = image.shape[:2]
    if columns > max_width:
        # Area averaging: a filled box stays one value inside, text does not alias into noise.
        image = cv2.resize(image, (max_width, max(1, round(rows * max_width / columns))),
                           interpolation=cv2.INTER_AREA)
    image = cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("the thumbnail could not be encoded as PNG")
    return png.tobytes()
