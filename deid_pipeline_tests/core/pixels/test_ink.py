"""Fitting text boxes to their ink: the polarity of the text and anatomy that changes across
the line (a bright edge along it, textured tissue under dark text)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from deid_pipeline.core.pixels.ink import (fit_to_ink, stroke_contrast, text_polarity,
                                           word_bands)
from deid_pipeline.core.pixels.ocr import Word
from deid_pipeline.core.pixels.redact import padded

DATA = Path(__file__).parent / "data"
ROWS, COLUMNS = 120, 420
TEXT = ("DOE", "JANE", "12.03.1950")


def _ink_mask() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Anti-aliased text of about 20 rows; each word's columns."""
    mask = np.zeros((ROWS, COLUMNS), np.uint8)
    spans, x = [], 40
    for word in TEXT:
        (width, _), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
        cv2.putText(mask, word, (x, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2, cv2.LINE_AA)
        spans.append((x, x + width))
        x += width + 18
    return mask, spans


def _texture(seed: int, level: float, spread: float) -> np.ndarray:
    """Tissue: blobs of a few pixels, as mammography's parenchyma."""
    rng = np.random.default_rng(seed)
    blobs = cv2.GaussianBlur(rng.normal(0, 1, (ROWS, COLUMNS)), (0, 0), 2.5)
    return level + spread * blobs / blobs.std()


def _detected(mask: np.ndarray, spans: list[tuple[int, int]]) -> tuple[tuple, list[Word]]:
    """The detector's box (the text grown by about its height on every side) and word boxes
    estimated a few pixels off, as the recogniser's character positions give them."""
    ys, xs = np.nonzero(mask)
    height = ys.max() - ys.min() + 1
    box = (int(xs.min() - 10), int(ys.min() - height * 3 // 4), int(xs.max() + 10),
           int(ys.max() + height * 3 // 4))
    words = [Word(text, (a + 3, box[1], b - 3, box[3]), 0.9) for text, (a, b) in zip(TEXT, spans)]
    return box, words


def _assert_tight_and_covering(image, mask, box, words, tails: int = 2):
    """Every ink pixel is hidden by the redacted (padded) word boxes, and the line's rows are
    the text's (to a pixel or two; `tails`: rows of texture above or below the text that may
    pass for ascenders and descenders), not the detector's box grown by the text's height."""
    line, fitted = fit_to_ink(image, box, words)
    ys, xs = np.nonzero(mask > 64)  # the ink, rims fainter than a quarter aside
    covered = np.zeros_like(mask, bool)
    for word in fitted:
        x1, y1, x2, y2 = padded(word.box, ROWS, COLUMNS)
        covered[y1:y2 + 1, x1:x2 + 1] = True
    assert covered[ys, xs].all()
    assert -tails <= line[1] - ys.min() <= 2
    assert -2 <= line[3] - ys.max() <= tails
    assert line[3] - line[1] < 0.8 * (box[3] - box[1])
    return line, fitted


@pytest.mark.parametrize("seed", [
    0, 2,
    # Known limit: texture joined to the band above and below passes for ascenders and
    # descenders over more than 8 rows (the text is still covered, the line not tight).
    pytest.param(1, marks=pytest.mark.xfail(strict=True, reason="tails through texture")),
])
def test_dark_text_over_bright_textured_tissue_fitted_tightly_and_covered(seed):
    mask, spans = _ink_mask()
    tissue = _texture(seed, 170, 35)
    # Brighter tissue in the upper half of the box: the background above and below the line
    # differ, as where the breast's edge runs along a line.
    tissue[:60] += 40
    image = np.clip(tissue + mask / 255 * (15 - tissue), 0, 255).astype(np.uint8)
    box, words = _detected(mask, spans)
    # Texture right above or below the text may pass for ascenders and descenders (a few
    # pixels a row, joined to the band), never the detector's whole box.
    _assert_tight_and_covering(image, mask, box, words, tails=8)


def test_light_text_under_a_bright_edge_along_the_line_fitted_tightly():
    mask, spans = _ink_mask()
    anatomy = np.full((ROWS, COLUMNS), 70.0)
    anatomy[:52] = 215  # a bright band (bone, a contrast-filled vessel) along the top of the box
    image = np.clip(anatomy + mask / 255 * (255 - anatomy), 0, 255).astype(np.uint8)
    box, words = _detected(mask, spans)
    _assert_tight_and_covering(image, mask, box, words)


def test_light_text_on_a_flat_background_fitted_as_before():
    mask, spans = _ink_mask()
    image = (mask / 255 * 230 + 10).astype(np.uint8)
    box, words = _detected(mask, spans)
    _assert_tight_and_covering(image, mask, box, words)


def test_colour_text_fitted():
    mask, spans = _ink_mask()
    tissue = _texture(3, 90, 20)
    grey = np.clip(tissue, 0, 255)
    image = np.stack([grey, grey, grey], axis=2)
    yellow = np.array([255.0, 255.0, 0.0])
    image = np.clip(image + (mask / 255)[..., None] * (yellow - image), 0, 255).astype(np.uint8)
    box, words = _detected(mask, spans)
    _assert_tight_and_covering(image, mask, box, words, tails=8)


def test_polarity_of_text():
    mask, _ = _ink_mask()
    crop = slice(45, 85), slice(30, 400)
    light = (mask / 255 * 200 + 30).astype(np.uint8)
    dark = (230 - mask / 255 * 200).astype(np.uint8)
    assert text_polarity(light[crop]) == 1
    assert text_polarity(dark[crop]) == -1
    # Faint light text on black with bright tissue beside it, in every row: still lighter.
    faint = (mask / 255 * 30).astype(np.uint8)
    faint[:, :45] = np.clip(_texture(4, 180, 50), 0, 255)[:, :45]
    assert text_polarity(faint[crop]) == 1
    # Dark text over bright texture.
    tissue = _texture(5, 170, 35)
    textured = np.clip(tissue + mask / 255 * (15 - tissue), 0, 255).astype(np.uint8)
    assert text_polarity(textured[crop]) == -1


def test_stroke_contrast_ignores_smooth_anatomy():
    ramp = np.tile(np.linspace(0, 250, 60)[:, None], (1, 200)).astype(np.uint8)
    # Away from the crop's top and bottom rows (the morphology's border).
    assert int(stroke_contrast(ramp)[8:-8].max()) <= 2


def test_a_word_fitted_taller_does_not_make_every_word_of_its_line_tall():
    # "[F]" (brackets reach above and below) or anatomy along one word: the others keep their
    # own rows, grown by at most two towards the line's.
    assert word_bands([(8, 23), (6, 26), (8, 23)], 34) == [(6, 25), (6, 26), (6, 25)]
    assert word_bands([(8, 23), (7, 24)], 34) == [(7, 24), (7, 24)]


def test_a_word_fitted_short_or_not_at_all_gets_the_line_band():
    # Faint ascenders over anatomy missed: only the lower-case middle of the word was found.
    assert word_bands([(6, 31), (17, 26), None], 38) == [(6, 31)] * 3
    assert word_bands([None, None], 20) == [(0, 19)] * 2


def test_each_word_of_a_line_gets_its_own_rows():
    # A word with a taller bracket beside plain words: the plain words' boxes stay within two
    # rows of their own ink.
    mask = np.zeros((ROWS, COLUMNS), np.uint8)
    cv2.putText(mask, "DOE", (40, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2, cv2.LINE_AA)
    cv2.rectangle(mask, (120, 50), (124, 73), 255, -1)  # a taller bar ("[" of "[F]")
    image = np.where(mask > 0, mask, 20).astype(np.uint8)
    ys, xs = np.nonzero(mask[:, :110])
    box = (30, 38, 140, 86)
    words = [Word("DOE", (int(xs.min()) + 3, 38, int(xs.max()) - 3, 86), 0.9),
             Word("[", (119, 38, 125, 86), 0.9)]
    line, (doe, bar) = fit_to_ink(image, box, words)
    assert abs(doe.box[1] - ys.min()) <= 2 and abs(doe.box[3] - ys.max()) <= 2
    assert bar.box[1] <= 50 and bar.box[3] >= 73
    assert line[1] == bar.box[1] and line[3] == bar.box[3]


def _estimates_past_the_ink(mask: np.ndarray, spans: list[tuple[int, int]]):
    """The detector's box, and word boxes estimated 8 pixels past each word's ends (the
    recogniser's half character pitch after a narrow last letter)."""
    box, _ = _detected(mask, spans)
    words = [Word(text, (a - 8, box[1], b + 8, box[3]), 0.9) for text, (a, b) in zip(TEXT, spans)]
    return box, words


def test_an_estimate_past_the_ink_over_a_flat_background_is_cut_back_to_it():
    mask, spans = _ink_mask()
    image = (mask / 255 * 220 + 20).astype(np.uint8)
    box, words = _estimates_past_the_ink(mask, spans)
    _, fitted = _assert_tight_and_covering(image, mask, box, words)
    for word, (a, b) in zip(fitted, spans):
        xs = np.nonzero(mask[:, a - 8:b + 9].any(axis=0))[0] + a - 8
        assert word.box[0] >= xs.min() - 1 and word.box[2] <= xs.max() + 1


def test_an_estimate_past_the_ink_keeps_faint_ink_in_it():
    mask, spans = _ink_mask()
    image = (mask / 255 * 220 + 20).astype(np.uint8)
    a, b = spans[1]
    # Faint strokes (a letter fainter than the ink threshold) just after the second word.
    image[60:70, b + 3:b + 6] += 15
    box, words = _estimates_past_the_ink(mask, spans)
    _, fitted = fit_to_ink(image, box, words)
    assert fitted[1].box[2] >= b + 5



def test_faint_text_beside_darker_anatomy_keeps_its_estimated_span():
    """A line as a CT window shows it (from the synthetic corpus): light text 20 grey levels
    above tissue that the window saturates, and a dark organ's edge crossing the last word's
    window 80 levels below. The edge must not set the level that counts as faint ink, or the
    word "Hospital" is cut back to its last letters and "Hosp" stays legible."""
    crop = cv2.imread(str(DATA / "saturated_line_over_dark_anatomy.png"), cv2.IMREAD_GRAYSCALE)
    image = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    rows, columns = crop.shape
    estimates = [("Taylor", 11, 102), ("Memorial", 117, 246), ("Hospital", 252, 369)]
    words = [Word(text, (a, 0, b, rows - 1), 0.99) for text, a, b in estimates]

    _, fitted = fit_to_ink(image, (0, 0, columns - 1, rows - 1), words)

    assert fitted[2].box[0] <= 252
    first_ink = 247 + int(np.argmax((crop[8:28, 247:262] >= 250).any(axis=0)))
    assert padded(fitted[2].box, rows, columns)[0] <= first_ink


def test_a_short_word_does_not_take_the_edges_of_its_neighbours():
    """The fit looks a character beyond a word's estimate for a letter the recogniser placed
    off its glyph; for "[F]" that is a third of its width, more than the word space, yet the
    neighbours' ink a word space away (where their estimates fell short of it) is not its."""
    mask = np.zeros((ROWS, COLUMNS), np.uint8)
    spans, x = [], 40
    for word in ("DOE", "[F]", "45Y"):
        (width, _), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
        cv2.putText(mask, word, (x, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2, cv2.LINE_AA)
        ink = np.nonzero(mask[:, x - 3:x + width + 3].any(axis=0))[0] + x - 3
        spans.append((int(ink.min()), int(ink.max())))
        x += width + 8
    image = (mask / 255 * 220 + 20).astype(np.uint8)
    (doe_a, doe_b), (a, b), (age_a, age_b) = spans
    words = [Word("DOE", (doe_a, 40, doe_b - 8, 90), 0.9), Word("[F]", (a, 40, b, 90), 0.9),
             Word("45Y", (age_a + 8, 40, age_b, 90), 0.9)]

    _, (_, sex, _) = fit_to_ink(image, (30, 40, age_b + 10, 90), words)

    assert a - 1 <= sex.box[0] and sex.box[2] <= b + 1

def test_a_last_letter_the_recogniser_dropped_is_joined_to_its_word():
    mask, spans = _ink_mask()
    image = (mask / 255 * 220 + 20).astype(np.uint8)
    box, _ = _detected(mask, spans)
    a, b = spans[1]
    (without_last, _), _ = cv2.getTextSize("JAN", cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
    words = [Word("JAN", (a, box[1], a + without_last - 4, box[3]), 0.9)]

    _, (jane,) = fit_to_ink(image, box, words)

    last_ink = a + int(np.nonzero(mask[:, a:b + 1].any(axis=0))[0].max())
    assert jane.box[2] >= last_ink - 1
