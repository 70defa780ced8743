"""The thumbnail of a redacted image shown in run metadata."""

import cv2
import numpy as np
import pytest

from deid_pipeline.core.pixels.redact import fill_boxes
from deid_pipeline.core.pixels.thumbnail import BLUR_SIGMA, MAX_WIDTH, thumbnail_png
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private

BOX = (100, 60, 299, 139)  # inclusive (x1, y1, x2, y2)
BLURRED_EDGE = int(3 * BLUR_SIGMA) + 2  # thumbnail pixels along a box edge the blur reaches


def redacted_image(photometric: str, rows: int = 400, columns: int = 600, frames: int = 1):
    ds = ct_with_nested_and_private()
    ds.Rows, ds.Columns, ds.PhotometricInterpretation = rows, columns, photometric
    rng = np.random.default_rng(0)
    pixels = rng.integers(500, 4000, size=(frames, rows, columns), dtype=np.uint16)
    if frames > 1:
        ds.NumberOfFrames = frames
    else:
        pixels = pixels[0]
    ds.PixelData = fill_boxes(pixels, ds, [BOX]).tobytes()
    return ds


def decoded(png: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8
    return image


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_the_redacted_box_shows_as_one_black_region(photometric):
    ds = redacted_image(photometric)
    image = decoded(thumbnail_png(ds))

    assert image.shape == (round(400 * MAX_WIDTH / 600), MAX_WIDTH)
    scale = MAX_WIDTH / 600
    x1, y1, x2, y2 = BOX
    # Inside the box, away from its edges (shrinking and blurring blend the border pixels).
    e = BLURRED_EDGE
    inside = image[int(y1 * scale) + e:int(y2 * scale) - e, int(x1 * scale) + e:int(x2 * scale) - e]
    assert inside.size and (inside == 0).all()
    assert image.mean() > 64  # the rest is the noise around it, not black


def test_a_multi_frame_image_shows_its_first_frame_and_a_small_one_keeps_its_size():
    ds = redacted_image("MONOCHROME2", rows=160, columns=200, frames=3)
    first = redacted_image("MONOCHROME2", rows=160, columns=200)
    first.PixelData = ds.PixelData[:160 * 200 * 2]
    image = decoded(thumbnail_png(ds, max_width=256))
    assert image.shape == (160, 200)
    assert (image == decoded(thumbnail_png(first, max_width=256))).all()
    x1, y1, x2, y2 = BOX
    e = BLURRED_EDGE
    assert (image[y1 + e:y2 + 1 - e, x1 + e:x2 + 1 - e] == 0).all()


def test_text_in_the_picture_is_not_legible_in_the_thumbnail():
    """Burned-in text the OCR missed must not be readable in run metadata."""
    ds = ct_with_nested_and_private()
    ds.Rows = ds.Columns = 512
    ds.PhotometricInterpretation = "MONOCHROME2"
    canvas = np.zeros((512, 512), np.uint8)
    cv2.putText(canvas, "THORNTON 2005-02-07", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = canvas.tobytes()
    image = decoded(thumbnail_png(ds))
    line = image[: 64 * MAX_WIDTH // 512]
    # Strokes one source pixel wide: shrunk and blurred, no pixel keeps half their brightness.
    assert line.max() < 128 and line.max() > 0
