"""pixels_hidden: what this project's OCR still reads inside a box of a de-identified image."""

from __future__ import annotations

from pydicom.dataset import Dataset

from deid_pipeline.core.pixels.ocr import TextReader
from deid_pipeline.core.pixels.views import frames_to_read
from deid_pipeline.core.transcode import decode_pixels

# Context around the box: OCR needs some background to see a glyph's edges.
CONTEXT = 8


class OcrBoxReader:
    def __init__(self, reader: TextReader | None = None) -> None:
        self.reader = reader or TextReader()

    def __call__(self, ds: Dataset, box: tuple[int, int, int, int]) -> str:
        x1, y1, x2, y2 = box
        pixels = decode_pixels(ds)
        texts = []
        for frame in frames_to_read(pixels, ds):
            crop = frame.pixels[max(0, y1 - CONTEXT):y2 + CONTEXT + 1,
                                max(0, x1 - CONTEXT):x2 + CONTEXT + 1]
            texts += [line.text for line in self.reader.read_frame(crop, ds)]
        return " ".join(texts)
