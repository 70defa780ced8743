"""Filling PHI boxes: the box solid, its margin only where the ink's rims stand out."""

import numpy as np
import pytest

from deid_pipeline.core.pixels.redact import fill_boxes, padded
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private

BOX = (40, 30, 119, 53)  # 24 rows: margins of 3 along the line and 1 across it


def noisy_frame(rows: int = 100, columns: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(1000, 30, (rows, columns)), 0, 4095).astype(np.uint16)


def dataset(rows: int = 100, columns: int = 160, frames: int = 1, samples: int = 1):
    ds = ct_with_nested_and_private()
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    if samples > 1:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, "RGB"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
    return ds


def with_strokes(pixels: np.ndarray, level: int) -> np.ndarray:
    """Vertical strokes at `level` inside BOX: the text the box was fitted to."""
    x1, y1, x2, y2 = BOX
    pixels[y1 + 4:y2 - 3, x1 + 4:x2 - 3:6] = level
    return pixels


def test_the_box_is_solid_and_the_background_in_its_margin_stays_as_it_was():
    pixels = with_strokes(noisy_frame(), 3000)
    out = fill_boxes(pixels, dataset(), [BOX])

    x1, y1, x2, y2 = BOX
    assert (out[y1:y2 + 1, x1:x2 + 1] == pixels.min()).all()
    changed = out != pixels
    changed[y1:y2 + 1, x1:x2 + 1] = False
    # Noise three spreads from the median is rare: a few margin pixels at most.
    assert changed.sum() <= 3


def test_the_rims_of_the_ink_in_the_margin_become_background():
    pixels = noisy_frame()
    x1, y1, x2, y2 = BOX
    pixels[y1 + 5:y2 - 5, x2 + 1] = 2500  # a faint stroke just past the box's end
    pixels[y2 + 1, x1 + 10:x1 + 30] = 2000  # an anti-aliased row under it

    out = fill_boxes(pixels, dataset(), [BOX])

    assert (np.abs(out[y1 + 5:y2 - 5, x2 + 1].astype(int) - 1000) < 100).all()
    assert (np.abs(out[y2 + 1, x1 + 10:x1 + 30].astype(int) - 1000) < 100).all()
    mx1, my1, mx2, my2 = padded(BOX, 100, 160)
    assert (out[:, mx2 + 1:] == pixels[:, mx2 + 1:]).all()  # nothing beyond the margin


def test_a_stroke_in_the_margin_barely_above_the_noise_goes_as_the_boxs_ink_does():
    # A scout's text at an extreme over speckle: 2.5 noise spreads above it, as is the stroke
    # of a letter the fit cut short just past the box's end.
    pixels = with_strokes(noisy_frame(), 1075)
    x1, y1, x2, y2 = BOX
    pixels[y1 + 4:y2 - 3, x2 + 2] = 1075

    out = fill_boxes(pixels, dataset(), [BOX])

    assert len(np.unique(out[y1 + 4:y2 - 3, x2 + 2])) == 1  # the background's one value
    assert (np.abs(out[y1 + 4:y2 - 3, x2 + 2].astype(int) - 1000) < 15).all()


def test_ink_in_a_neighbours_margin_is_still_hidden_by_its_own_box():
    pixels = noisy_frame()
    pixels[35:50, 122:130] = 4000  # the next word's ink, three columns after BOX
    neighbour = (122, 30, 150, 53)

    out = fill_boxes(pixels, dataset(), [BOX, neighbour])

    assert (out[35:50, 122:130] == pixels.min()).all()


@pytest.mark.parametrize("frames", [1, 3])
def test_every_frame_gets_its_own_background(frames):
    stack = np.stack([with_strokes(noisy_frame(seed=i), 3000) + 500 * i for i in range(frames)])
    x1, y1, x2, y2 = BOX
    stack[:, y1:y2, x2 + 2] = 3500
    pixels = stack if frames > 1 else stack[0]

    out = fill_boxes(pixels, dataset(frames=frames), [BOX])

    out = out if frames > 1 else out[np.newaxis]
    for frame in range(frames):
        assert abs(int(np.median(out[frame, y1:y2, x2 + 2])) - (1000 + 500 * frame)) < 60
        assert (out[frame, y1:y2 + 1, x1:x2 + 1] == stack.min()).all()


def test_colour_rims_are_found_in_any_channel():
    rng = np.random.default_rng(1)
    pixels = np.clip(rng.normal(90, 4, (100, 160, 3)), 0, 255).astype(np.uint8)
    x1, y1, x2, y2 = BOX
    pixels[y1 + 4:y2 - 3, x1 + 4:x2 - 3:6] = 250
    pixels[y1:y2, x2 + 1, 2] = 200  # a blue rim

    out = fill_boxes(pixels, dataset(samples=3), [BOX])

    assert (np.abs(out[y1:y2, x2 + 1].astype(int) - 90) < 20).all()
    assert (out[y1:y2 + 1, x1:x2 + 1] == 0).all()
