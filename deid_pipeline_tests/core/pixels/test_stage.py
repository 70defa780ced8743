"""The pixel stage on synthetic files whose burned-in words and boxes are known."""

import json

import numpy as np
import pydicom
import pytest

from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.pixels.phi import ages_of
from deid_pipeline.core.pixels.redact import padded
from deid_pipeline.core.pixels.ocr import TextLine
from deid_pipeline.core.pixels.stage import PixelRedactor, _adjacent_ink, _strip_beyond
from deid_pipeline.core.pixels.views import reading_views
from deid_pipeline.core.transcode import decode_pixels


@pytest.fixture(scope="module")
def redactor():
    return PixelRedactor()


def corpus_files(small_corpus, *, phi: bool, frames: int = 1):
    for path in sorted(small_corpus.root.rglob("*.dcm")):
        truth = json.loads(path.with_suffix(".json").read_text())
        if truth["frames"] == frames and any(w["is_phi"] for w in truth["words"]) == phi and (
                phi or not truth["words"]):
            yield path, truth


def redact(redactor, path):
    ds = pydicom.dcmread(path)
    original = pydicom.dcmread(path)
    result = redactor.redact(ds, gather(original), sex=str(original.get("PatientSex", "")),
                             ages=ages_of(original))
    return original, ds, result


def test_burned_in_phi_is_hidden_and_nothing_else_changes(redactor, small_corpus):
    path, truth = next(corpus_files(small_corpus, phi=True))
    original, ds, result = redact(redactor, path)

    assert result.changed
    before, after = decode_pixels(original), decode_pixels(ds)
    rows, columns = int(ds.Rows), int(ds.Columns)
    changed = np.asarray(before != after)
    changed = changed.any(axis=-1) if changed.ndim == 3 else changed
    for word in (w for w in truth["words"] if w["is_phi"]):
        x1, y1, x2, y2 = word["bbox"]
        assert changed[y1:y2 + 1, x1:x2 + 1].mean() > 0.3, word["category"]
    allowed = np.zeros((rows, columns), dtype=bool)
    for x1, y1, x2, y2 in (padded(b, rows, columns) for b in result.phi_boxes):
        allowed[y1:y2 + 1, x1:x2 + 1] = True
    assert not (changed & ~allowed).any()  # only inside the redacted boxes
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
                    "PhotometricInterpretation", "SamplesPerPixel"):
        assert ds[keyword].value == original[keyword].value, keyword
    assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert ds.BurnedInAnnotation == "NO"
    assert all(f.reason for f in result.findings)  # every box says why


def test_a_file_without_text_keeps_its_pixel_data_bytes(redactor, small_corpus):
    path, _ = next(corpus_files(small_corpus, phi=False))
    original, ds, result = redact(redactor, path)
    assert not result.changed and not result.phi_boxes
    assert ds.PixelData == original.PixelData


def test_every_frame_of_a_multi_frame_image_is_redacted(redactor, small_corpus):
    candidates = [p for frames in (8, 9, 10, 11, 12)
                  for p in corpus_files(small_corpus, phi=True, frames=frames)]
    path, truth = candidates[0]
    original, ds, result = redact(redactor, path)
    before, after = decode_pixels(original), decode_pixels(ds)
    word = next(w for w in truth["words"] if w["is_phi"])
    x1, y1, x2, y2 = word["bbox"]
    for frame in range(int(ds.NumberOfFrames)):
        assert (before[frame, y1:y2 + 1, x1:x2 + 1] != after[frame, y1:y2 + 1, x1:x2 + 1]).any()


def ct_frame(*lines: str, size: int = 256):
    """The factory's CT (DOE^JANE, MRN12345, no dates) with `lines` burned in at the maximum
    over a flat grey; returns the dataset and the frame."""
    import cv2

    from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private

    ds = ct_with_nested_and_private()
    ds.Rows = ds.Columns = size
    ink = np.zeros((size, size), dtype=np.uint8)  # OpenCV draws text on 8-bit images only
    for row, text in enumerate(lines):
        cv2.putText(ink, text, (20, 60 + 40 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    frame = np.where(ink > 0, 4095, 400).astype("<u2")
    ds.PixelData = frame.tobytes()
    return ds, frame


def test_phi_the_header_does_not_hold_is_caught(redactor):
    # Initials of someone the header does not name, and a date it does not hold.
    ds, _ = ct_frame("Read by KQZ", "Seen 07/04/1999")
    result = redactor.redact(ds, gather(ds))
    reasons = {f.reason for f in result.findings if f.is_phi}
    assert result.changed
    assert {"pattern:initials", "pattern:date-phone-id"} <= reasons


def test_a_file_with_only_safe_annotations_keeps_its_pixel_data_bytes(redactor):
    ds, _ = ct_frame("AP PORTABLE", "W:400 L:40")
    before = ds.PixelData
    result = redactor.redact(ds, gather(ds))
    assert result.findings and not result.phi_boxes and not result.changed
    assert ds.PixelData == before


def test_a_zone_from_the_policy_is_blacked_out_on_its_device_only(redactor, tmp_path):
    from deid_pipeline.core.policy.rules import load_policy

    policy = tmp_path / "site.yaml"
    policy.write_text("pixels:\n  zones:\n    - manufacturer: ACME MEDICAL\n"
                      "      model: SONO.*\n      boxes: [[200, 0, 255, 15]]\n")
    zoned = PixelRedactor(redactor.reader, zones=load_policy([policy]).pixels.zones)
    ds, frame = ct_frame("AP")  # nothing the OCR would hide
    ds.Manufacturer, ds.ManufacturerModelName = "Acme Medical", "Sono 5"
    result = zoned.redact(ds, gather(ds))
    after = decode_pixels(ds)
    assert result.changed and (after[:16, 200:] == frame.min()).all()
    assert (after[16:] == frame[16:]).all() and (after[:, :200] == frame[:, :200]).all()

    other, _ = ct_frame("AP")
    other.Manufacturer = "Someone Else"
    assert not zoned.redact(other, gather(other)).changed


def test_the_deid_cli_records_the_clean_pixel_data_option(tmp_path, deid_secret):
    from deid_pipeline.cli import main
    from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

    write(ct_with_nested_and_private(), tmp_path / "in" / "1.dcm")
    assert main(["deid", str(tmp_path / "in"), str(tmp_path / "out"), "--work",
                 str(tmp_path / "work"), "--jobs", "1"]) == 0
    (output,) = (tmp_path / "out").rglob("*.dcm")
    codes = [item.CodeValue for item in pydicom.dcmread(output).DeidentificationMethodCodeSequence]
    assert codes[0] == "113100" and "113101" in codes


def test_faint_text_on_a_colour_header_band_is_read(redactor):
    import cv2

    from deid_pipeline.core.pixels.views import reading_views
    from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private

    ds = ct_with_nested_and_private()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PlanarConfiguration = 512, 512, 3, 0
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "RGB", 8, 8, 7
    ink = np.zeros((512, 512), dtype=np.uint8)
    cv2.putText(ink, "DOE JANE 03/01/2012", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1,
                cv2.LINE_AA)
    band = np.zeros((512, 512), dtype=np.uint8)
    band[:36] = 25  # an ultrasound-style dark header band with text ten levels brighter
    grey = np.maximum(band, (25 + ink.astype(np.uint16) * 10 // 255) * (ink > 0)).astype(np.uint8)
    frame = np.repeat(grey[..., np.newaxis], 3, axis=-1)
    ds.PixelData = frame.tobytes()

    assert "local" in [view.name for view in reading_views(frame, ds)]
    result, _ = redactor.find(ds, gather(ds))
    assert "metadata:name" in {f.reason for f in result.findings if f.is_phi}


def test_threads_is_a_setting_of_the_redactor_and_rebuilds_its_reader():
    redactor = PixelRedactor(device="cpu", threads=1)
    reader = redactor.reader
    assert reader._det.get_session_options().intra_op_num_threads == 1
    redactor.threads = 1
    assert redactor.reader is reader  # unchanged: the same reader
    redactor.threads = 2
    assert redactor.reader is not reader
    assert redactor.reader._det.get_session_options().intra_op_num_threads == 2
    with pytest.raises(ValueError):
        redactor.threads = -1


def test_the_margin_is_wider_along_a_line_than_across_it():
    # A 24-pixel line: 3 pixels left and right (an eighth), 1 above and below (a 24th).
    assert padded((100, 100, 199, 123), 512, 512) == (97, 99, 202, 124)
    assert padded((100, 100, 199, 147), 512, 512) == (94, 98, 205, 149)  # 48 rows: 6 and 2
    assert padded((0, 0, 9, 7), 512, 512) == (0, 0, 11, 8)  # at least 2 along, 1 across
    assert padded((100, 100, 199, 123), 512, 512, margin=0) == (100, 100, 199, 123)


class _CutShort:
    """A reader whose detector stopped after a line's first word (the rest read for real)."""

    def __init__(self, reader):
        self._reader = reader

    def read(self, views):
        line = self._reader.read(views)[0]
        word = line.words[0]
        return [TextLine(word.box, word.text, line.score, [word], line.det_score, line.view)]

    def recognize(self, crops):
        return self._reader.recognize(crops)


def test_phi_just_beyond_the_end_of_a_line_with_phi_is_read_and_hidden(redactor):
    # "MRN12345" is the file's ID; the date after it was left out of the detected line.
    ds, _ = ct_frame("MRN12345 07/04/1999", size=512)
    result, _ = PixelRedactor(_CutShort(redactor.reader)).find(ds, gather(ds))
    (id_box,) = [f.box for f in result.findings if f.reason == "metadata:identifier"]
    dates = [f.box for f in result.findings if f.reason == "pattern:date-phone-id"]
    assert dates and dates[0][0] > id_box[2]
    # The strip is boxed to its ink: it ends where the date ends, well short of eight heights.
    assert dates[0][2] < id_box[2] + 8 * (id_box[3] - id_box[1] + 1)


def test_a_long_line_the_detector_found_one_word_of_is_read_on_strip_after_strip(redactor):
    # Past "MRN12345" lie more than eight of its heights of PHI: read on beyond each strip.
    ds, frame = ct_frame("MRN12345 DOE JANE 07/04/1999", size=512)
    result, _ = PixelRedactor(_CutShort(redactor.reader)).find(ds, gather(ds))
    (id_box,) = [f.box for f in result.findings if f.reason == "metadata:identifier"]
    beyond = [f.box for f in result.findings if f.is_phi and f.box[0] > id_box[2]]
    ink_end = int(np.nonzero((frame == 4095).any(axis=0))[0].max())
    assert ink_end - id_box[2] > 8 * (id_box[3] - id_box[1] + 1)
    assert len(beyond) >= 2 and max(box[2] for box in beyond) >= ink_end


def test_the_strip_is_read_in_the_first_view_that_shows_phi_there(redactor):
    # Faint text may stand out only in the smoothed view: a view showing nothing in the strip
    # (listed first) does not end the search.
    from deid_pipeline.core.pixels.phi import PixelPhiJudge

    ds, frame = ct_frame("MRN12345 07/04/1999", size=512)
    shown = np.where(frame == 4095, 255, 0).astype(np.uint8)
    blank = np.zeros_like(shown)
    line = _CutShort(redactor.reader).read(reading_views(frame, ds))[0]
    strip = _strip_beyond(line.box, 1, shown.shape, [line])
    judge = PixelPhiJudge(gather(ds))
    assert redactor._read_on([blank], strip, judge, line, 1, [line]) == []
    (read,) = redactor._read_on([blank, shown], strip, judge, line, 1, [line])
    assert read.is_phi and read.box[0] > line.box[2]


def test_the_rest_of_a_value_beyond_a_line_end_is_judged_with_the_line(redactor):
    # "Center" alone names no one; after "Springfield" it is the rest of the institution
    # the detector stopped short of (too far from it to count as ink touching its end).
    ds, _ = ct_frame("Springfield    Center", size=512)
    ds.InstitutionName = "Springfield Center"
    result, _ = PixelRedactor(_CutShort(redactor.reader)).find(ds, gather(ds))
    places = sorted(f.box for f in result.findings if f.reason == "metadata:place")
    assert len(places) == 2 and places[1][0] > places[0][2]


def test_a_line_without_phi_at_its_end_gets_no_strip_read(redactor):
    # "AP" alone is safe: the strip after it (holding a date) is not read.
    ds, _ = ct_frame("AP PORTABLE 07/04/1999", size=512)
    result, _ = PixelRedactor(_CutShort(redactor.reader)).find(ds, gather(ds))
    assert not result.phi_boxes


def test_the_strip_beyond_a_line_stops_at_the_next_line_and_the_frame():
    line = TextLine((100, 10, 199, 21), "ID 123", 0.9)
    assert _strip_beyond(line.box, 1, (512, 512), [line]) == (200, 10, 295, 21)
    assert _strip_beyond(line.box, 1, (512, 250), [line]) == (200, 10, 249, 21)
    other = TextLine((240, 12, 300, 22), "Im: 3", 0.9)
    assert _strip_beyond(line.box, 1, (512, 512), [line, other]) == (200, 10, 239, 21)
    assert _strip_beyond(line.box, -1, (512, 512), [line]) == (4, 10, 99, 21)
    # Less than a line height left: nothing to read.
    assert _strip_beyond((5, 10, 50, 21), -1, (512, 512), []) is None


def test_a_value_the_detector_left_out_after_its_label_is_read_and_hidden(redactor):
    # The detector stopped after "ID:" (a value running onto the body's edge): the label
    # alone is no PHI, but the strip after it is read to its end and its value hidden.
    ds, frame = ct_frame("ID: MRN12345", size=512)
    result, _ = PixelRedactor(_CutShort(redactor.reader)).find(ds, gather(ds))
    (id_box,) = [f.box for f in result.findings if f.reason == "metadata:identifier"]
    columns = np.nonzero((frame[id_box[1]:id_box[3] + 1] > 400).any(axis=0))[0]
    height = id_box[3] - id_box[1] + 1
    value_start = columns[np.argmax(np.diff(columns)) + 1]  # after the space past "ID:"
    # Boxed to the characters read, from the value's first ink (with the margin) to about its
    # last.
    assert padded(id_box, 512, 512)[0] <= value_start
    assert columns.max() - 2 <= id_box[2] <= columns.max() + height


class _LabelCut(_CutShort):
    """A reader whose detector left out a line's first word (its field's label)."""

    def read(self, views):
        line = self._reader.read(views)[0]
        words = line.words[1:]
        box = (words[0].box[0], line.box[1], line.box[2], line.box[3])
        return [TextLine(box, " ".join(w.text for w in words), line.score, words,
                         line.det_score, line.view)]


def test_a_label_the_detector_left_out_before_a_phi_value_is_hidden_with_it(redactor):
    # MIDI-B's pixels_hidden reads the whole field ("ID: ..."): a label left legible fails it.
    ds, _ = ct_frame("ID: MRN12345", size=512)
    result, _ = PixelRedactor(_LabelCut(redactor.reader)).find(ds, gather(ds))
    (id_box,) = [f.box for f in result.findings if f.reason == "metadata:identifier"]
    (label,) = [f.box for f in result.findings if f.reason == "line:with-phi"]
    height = id_box[3] - id_box[1] + 1
    assert label[2] < id_box[0] and id_box[0] - label[2] <= height
    assert label[2] - label[0] < 4 * height  # the label's ink, not the strip


def test_ink_touching_a_phi_line_end_counts_only_when_it_holds_strokes():
    import cv2

    strip = (200, 40, 330, 60)  # beyond the right end of a line ending at x 199, 21 rows tall
    label = np.full((120, 400), 20, np.uint8)
    cv2.putText(label, "ID:", (205, 58), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 230, 2, cv2.LINE_AA)
    assert _adjacent_ink(label, strip, 1) is not None
    # An organ's edge: a smooth bright body beginning just beyond the line's end.
    yy, xx = np.mgrid[0:120, 0:400]
    body = np.where((xx - 330) ** 2 + (yy - 140) ** 2 < 115 ** 2, 120, 20).astype(np.uint8)
    assert _adjacent_ink(cv2.GaussianBlur(body, (0, 0), 1.5), strip, 1) is None


def test_a_banner_read_on_every_frame_of_a_series_is_one_box_per_word(redactor, monkeypatch):
    # Five frames whose anatomy moves under the same banner: each frame is read apart and its
    # boxes fitted apart; each word is hidden with one box, their median, on every frame.
    import cv2

    from deid_pipeline.core.pixels import stage

    ds, banner = ct_frame("DOE JANE 07/04/1999")
    rng = np.random.default_rng(8)
    frames = []
    for shift in range(5):
        anatomy = cv2.GaussianBlur(rng.normal(1500, 600, (256, 256)), (0, 0), 3)
        frame = np.where(banner == 4095, 4095, np.clip(np.roll(anatomy, 9 * shift, 0), 0, 3000))
        frames.append(frame.astype("<u2"))
    ds.NumberOfFrames = 5
    ds.PixelData = np.stack(frames).tobytes()

    def phi_findings():
        result, _ = redactor.find(ds, gather(ds))
        return [f for f in result.findings if f.is_phi and f.box[1] < 80]

    settled = [f for f in phi_findings() if f.frames == (0, 1, 2, 3, 4)]
    assert len(settled) == 3  # DOE, JANE, the date
    monkeypatch.setattr(stage, "SETTLE_MIN_FRAMES", 10**6)
    apart = phi_findings()
    assert all(len(f.frames) == 1 for f in apart)
    for word in settled:
        fits = np.array([f.box for f in apart if stage.box_iou(f.box, word.box) >= 0.5])
        assert len(fits) == 5 and (np.median(fits, axis=0).round() == word.box).all()
