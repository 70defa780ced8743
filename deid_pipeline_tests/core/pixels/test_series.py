"""PHI a series shares: found on most images of a series, hidden on the others that hold the same
strokes, in the tag batch (CLI) and in the pixel batch (assets) alike."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom
import pytest

from deid_pipeline.core.deid.batch import WorkPaths, deidentify_tree
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.discovery import FileKind
from deid_pipeline.core.pixels.batch import find_phi
from deid_pipeline.core.pixels.series import SERIES_REASON, SeriesImage, shared_phi, single_frame
from deid_pipeline.core.pixels.stage import BoxFinding, PixelRedactor, PixelResult
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline.core.transcode import decode_pixels
from deid_pipeline_tests.dicom_factory import realistic_image, write

SECRET = b"series pass test secret, not for production"
SIZE = 96
NOISE = 8.0


def banner_mask() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """One-pixel strokes of a faint banner line and their box."""
    canvas = np.zeros((SIZE, SIZE), np.uint8)
    cv2.putText(canvas, "DOE JANE 1986", (4, 14), cv2.FONT_HERSHEY_PLAIN, 0.8, 255, 1)
    ys, xs = np.nonzero(canvas)
    return canvas > 0, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))


MASK, BOX = banner_mask()


def image(seed: int, text: bool = True, anatomy: int = 0) -> np.ndarray:
    """Noisy air, a disc of anatomy `anatomy` pixels across reaching up under the banner, and
    the banner three noise spreads above the air where `text`."""
    rng = np.random.default_rng(seed)
    pixels = rng.normal(100.0, NOISE, (SIZE, SIZE))
    if anatomy:
        disc = np.zeros((SIZE, SIZE), np.uint8)
        cv2.circle(disc, (SIZE // 2, SIZE // 2 + 10), anatomy // 2, 1, -1)
        pixels += cv2.GaussianBlur(disc.astype(float), (0, 0), 2) * 400
    if text:
        pixels[MASK] += 3 * NOISE
    return pixels.astype(np.float32)


def shared(images: dict[str, np.ndarray], found: set[str], series: dict[str, str] | None = None):
    members = [SeriesImage(name, (series or {}).get(name, "s1"),
                           (BOX,) if name in found else ()) for name in images]
    return shared_phi(members, images.get, images.get)


def test_phi_found_on_most_images_is_hidden_on_the_others_that_hold_it():
    images = {f"i{n}": image(n, anatomy=20 + 6 * n) for n in range(5)}
    images["blank"] = image(9, text=False, anatomy=50)  # same series, no banner
    added = shared(images, found={"i0", "i1", "i2", "i3"})
    assert set(added) == {"i4"}
    ((box, correlation),) = added["i4"]
    assert box == BOX and correlation >= 0.3


def test_a_place_found_on_few_images_or_in_another_series_spreads_nowhere():
    images = {f"i{n}": image(n) for n in range(5)}
    # One or two images of five: as likely a misreading there.
    assert shared(images, found={"i0"}) == {}
    assert shared(images, found={"i0", "i1"}) == {}
    # i3 and i4 are of another series, where nothing was found.
    assert shared(images, found={"i0", "i1", "i2"}, series={"i3": "s2", "i4": "s2"}) == {}


def test_a_file_that_cannot_be_read_again_is_no_image_to_look_at(tmp_path):
    (tmp_path / "garbage.dcm").write_bytes(b"not a DICOM file")
    assert single_frame(tmp_path / "garbage.dcm") is None
    assert single_frame(tmp_path / "gone.dcm") is None


def test_images_of_another_size_or_several_frames_are_left_alone():
    images = {f"i{n}": image(n) for n in range(4)}
    images["small"] = image(7)[:64, :64]
    images["cine"] = None  # what the loader gives for a multi-frame file
    added = shared(images, found={"i0", "i1", "i2"})
    assert list(added) == ["i3"] and [box for box, _ in added["i3"]] == [BOX]


# --- in the batches -----------------------------------------------------------------------------

MISSED = 4  # the OCR read the banner on images 1-3, not on 4; image 5 holds no banner


class _FindsBannerButOnOne(PixelRedactor):
    """The OCR, as the tests need it: the banner found on every image holding it but one."""

    def find(self, ds, known, *, sex=None, ages=()):
        result = PixelResult(frames_read=1)
        if int(ds.InstanceNumber) < MISSED:
            result.findings.append(BoxFinding((0,), BOX, True, "metadata:name", 0.9))
        return result, decode_pixels(ds)


@pytest.fixture(scope="module")
def series_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("series") / "in"
    for number in range(1, 6):
        ds = realistic_image(sop_uid=f"1.2.826.0.1.3680043.9.7777.3.{number}",
                             instance_number=number, pixels=(SIZE, SIZE))
        pixels = image(number, text=number != 5, anatomy=24 + 4 * number)
        ds.PixelData = np.clip(pixels, 0, 4095).astype("<u2").tobytes()
        write(ds, root / f"{number}.dcm")
    return root


def _by_instance(root: Path) -> dict[int, Path]:
    return {int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber): p
            for p in root.rglob("*.dcm")}


def test_the_tag_batch_hides_the_banner_where_the_ocr_missed_it(series_tree, tmp_path):
    report = deidentify_tree(series_tree, tmp_path / "out", tmp_path / "work",
                             TagEngine(load_policy(), Pseudonymizer(SECRET)),
                             redactor=_FindsBannerButOnOne(), kinds={FileKind.DICOM})
    assert (report.written, report.quarantined) == (5, 0)
    outputs = _by_instance(tmp_path / "out")
    inputs = _by_instance(series_tree)
    x1, y1, x2, y2 = BOX
    missed = pydicom.dcmread(outputs[MISSED]).pixel_array
    assert np.ptp(missed[y1:y2 + 1, x1:x2 + 1]) == 0  # one fill value over the whole banner
    # The image without a banner keeps its pixels, byte for byte.
    assert pydicom.dcmread(outputs[5]).PixelData == pydicom.dcmread(inputs[5]).PixelData
    paths = WorkPaths(tmp_path / "work")
    boxes = pd.read_parquet(paths.pixel_findings)
    spread = boxes[boxes.reason == SERIES_REASON]
    assert len(spread) == 1 and spread.file.iloc[0].endswith(outputs[MISSED].name)
    files = pd.read_parquet(paths.files).set_index("output")
    assert files.pixels_changed.sum() == 4


def test_the_pixel_batch_finds_the_banner_where_the_ocr_missed_it(series_tree, tmp_path):
    deidentify_tree(series_tree, tmp_path / "out", tmp_path / "work",
                    TagEngine(load_policy(), Pseudonymizer(SECRET)), kinds={FileKind.DICOM})
    files = pd.read_parquet(WorkPaths(tmp_path / "work").files)
    findings, report = find_phi(files, series_tree, tmp_path / "out", _FindsBannerButOnOne(),
                                tmp_path / "quarantine")
    spread = findings[findings.reason == SERIES_REASON]
    assert len(spread) == 1 and tuple(spread[["x1", "y1", "x2", "y2"]].iloc[0]) == BOX
    assert report.changed == 4
