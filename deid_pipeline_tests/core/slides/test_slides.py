import hashlib
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import openslide
import pytest
import tifffile

from deid_pipeline.core.policy.rules import PolicyError, load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer, shift_date
from deid_pipeline.core.slides import deidentify as deidentify_module
from deid_pipeline.core.slides.aperio import SlideError
from deid_pipeline.core.slides.deidentify import deidentify_slide
from deid_pipeline.core.slides.metadata import slide_metadata, slide_metadata_frame
from deid_pipeline.core.slides.synth import write_synthetic_slide
from deid_pipeline.core.slides.verify import verify_slide
from deid_pipeline_tests.core.slides.stored import blank_comments, stored_segments

SECRET = b"slide test secret, not for production"
PATIENT_NAME = "DOE JANE"
SLIDE_ID = "S12-34567 A1"
PATIENT_ID = "PID-778899"
SCANNED = datetime(2012, 1, 3, 10, 12, 31)
IDENTIFYING_KEYS = ("Filename", "Date", "Time", "Time Zone", "User", "ScanScope ID", "DSR ID",
                    "ImageID", "Title", "Barcode", "SlideId", "Rack", "Slide")
IDENTIFYING_TAGS = ("DateTime", "Artist", "HostComputer", "Software", "DocumentName", "Make",
                    "Model")


@pytest.fixture(scope="module")
def settings():
    return load_policy().slides


@pytest.fixture(scope="module")
def pseudonymizer():
    return Pseudonymizer(SECRET)


@pytest.fixture(scope="module")
def linked_slide(tmp_path_factory):
    """A slide whose ImageDescription links it to a patient."""
    return write_synthetic_slide(
        tmp_path_factory.mktemp("slides") / "linked.svs", seed=7, patient_name=PATIENT_NAME,
        slide_id=SLIDE_ID, date=SCANNED, width=2048, height=1536, patient_id=PATIENT_ID)


@pytest.fixture(scope="module")
def unlinked_slide(tmp_path_factory):
    return write_synthetic_slide(
        tmp_path_factory.mktemp("slides") / "unlinked.svs", seed=8, patient_name="ROE RICHARD",
        slide_id="S13-00042 B2", date=SCANNED, width=1000, height=700, tile=240)


@pytest.fixture(scope="module")
def dropped(linked_slide, settings, pseudonymizer, tmp_path_factory):
    return deidentify_slide(linked_slide, tmp_path_factory.mktemp("dropped"), settings,
                            pseudonymizer, label_mode="drop")


@pytest.fixture(scope="module")
def relabelled(linked_slide, settings, pseudonymizer, tmp_path_factory):
    return deidentify_slide(linked_slide, tmp_path_factory.mktemp("relabelled"), settings,
                            pseudonymizer, label_mode="pseudonym")


# -- the synthetic slides ------------------------------------------------------------------------

def test_synthetic_slide_is_an_aperio_slide_with_label_macro_and_identifying_metadata(linked_slide):
    with openslide.OpenSlide(linked_slide) as slide:
        assert slide.properties["openslide.vendor"] == "aperio"
        assert slide.level_dimensions == ((2048, 1536), (512, 384), (128, 96))
        assert set(slide.associated_images) == {"thumbnail", "label", "macro"}
        assert slide.properties["aperio.Barcode"] == SLIDE_ID
        assert slide.properties["aperio.Date"] == "01/03/12"
        assert PATIENT_NAME in slide.properties["tiff.DocumentName"]
    with tifffile.TiffFile(linked_slide) as tif:
        level0 = tif.pages[0]
        assert level0.compression == tifffile.COMPRESSION.JPEG and level0.tile == (256, 256)
        # Tables live in JPEGTables only: a copy that lost the tag could not decode a tile.
        assert level0.jpegtables is not None
        first_tile = stored_segments(linked_slide)[0][1][0]
        assert b"\xff\xdb" not in first_tile.split(b"\xff\xda")[0]


# -- pixels --------------------------------------------------------------------------------------

@pytest.mark.parametrize("result_name", ["dropped", "relabelled"])
def test_every_level_reads_back_identical(result_name, linked_slide, request):
    output = request.getfixturevalue(result_name).output
    with openslide.OpenSlide(linked_slide) as before, openslide.OpenSlide(output) as after:
        assert after.properties["openslide.vendor"] == "aperio"
        assert after.level_dimensions == before.level_dimensions
        for level, size in enumerate(before.level_dimensions):
            assert after.read_region((0, 0), level, size).tobytes() == \
                before.read_region((0, 0), level, size).tobytes()
            # Regions that straddle tile edges, at level-0 coordinates off the tile grid.
            for location in ((300, 200), (1001, 777), (1900, 1400)):
                assert after.read_region(location, level, (200, 150)).tobytes() == \
                    before.read_region(location, level, (200, 150)).tobytes()
        assert after.associated_images["thumbnail"].tobytes() == \
            before.associated_images["thumbnail"].tobytes()


def test_tiles_and_strips_are_copied_as_stored(linked_slide, dropped):
    before, after = stored_segments(linked_slide), stored_segments(dropped.output)
    assert len(after) == len(before) == 4  # three levels and the thumbnail
    for (tables_before, segments_before), (tables_after, segments_after) in zip(before, after):
        assert tables_after == tables_before
        assert segments_after == segments_before


def test_jpeg_2000_tiles_are_copied_as_stored_but_for_their_comments(settings, pseudonymizer,
                                                                     tmp_path):
    """Aperio also writes JPEG 2000 tiles (compression 33003/33005). They are copied as stored
    too, but for the text of their COM segments (OpenJPEG's name here), blanked in place."""
    rows, columns = np.mgrid[0:384, 0:512]
    pixels = np.stack([rows % 256, columns % 256, (rows + columns) % 256], -1).astype(np.uint8)
    header = "Aperio Image Library v12.0.15 \r\n512x384 [0,0 512x384] (256x256) J2K/KDU Q=70"
    description = f"{header}|AppMag = 40|MPP = 0.25|Filename = 12345|Date = 05/06/19"
    source = tmp_path / "j2k.svs"
    with tifffile.TiffWriter(source) as writer:
        writer.write(pixels, tile=(256, 256), compression=33005, photometric="rgb",
                     description=description, metadata=None)
        writer.write(pixels[::4, ::4], compression="jpeg", photometric="rgb",
                     description=description, metadata=None)
        writer.write(pixels[::2, ::2].copy(), tile=(256, 256), compression=33005,
                     photometric="rgb", description=description, metadata=None)
    result = deidentify_slide(source, tmp_path / "out", settings, pseudonymizer)
    for (_, before), (_, after) in zip(stored_segments(source), stored_segments(result.output),
                                       strict=True):
        for tile_before, tile_after in zip(before, after, strict=True):
            if tile_before.startswith(b"\xff\x4f"):  # the JPEG 2000 levels
                assert b"OpenJPEG" in tile_before and b"OpenJPEG" not in tile_after
                assert tile_after == blank_comments(tile_before, b"\xff\x64", 2)
            else:
                assert tile_after == tile_before
    with openslide.OpenSlide(source) as before, openslide.OpenSlide(result.output) as slide:
        assert slide.level_dimensions == ((512, 384), (256, 192))
        for level, size in enumerate(slide.level_dimensions):
            assert slide.read_region((0, 0), level, size).tobytes() == \
                before.read_region((0, 0), level, size).tobytes()
        assert {name for name in slide.properties if name.startswith("aperio.")} == {
            "aperio.AppMag", "aperio.MPP"}


# -- associated images ---------------------------------------------------------------------------

def test_label_and_macro_are_dropped(dropped):
    with openslide.OpenSlide(dropped.output) as slide:
        assert set(slide.associated_images) == {"thumbnail"}
    assert {(row.keyword, row.action) for row in dropped.audit if row.tag == "page"} == {
        ("label", "delete"), ("macro", "delete")}


def test_the_pseudonym_label_replaces_the_label(linked_slide, relabelled):
    with openslide.OpenSlide(linked_slide) as before, \
            openslide.OpenSlide(relabelled.output) as after:
        assert set(after.associated_images) == {"thumbnail", "label"}
        original, generated = before.associated_images["label"], after.associated_images["label"]
        assert generated.size == original.size
        assert generated.tobytes() != original.tobytes()
        # Black text on white, no bars: the barcode is gone with everything else it showed.
        ink = np.asarray(generated.convert("L")) < 128
        assert 0 < ink.mean() < 0.1


# -- metadata ------------------------------------------------------------------------------------

@pytest.mark.parametrize("result_name", ["dropped", "relabelled"])
def test_no_identifying_property_or_value_is_left(result_name, linked_slide, request):
    output = request.getfixturevalue(result_name).output
    with openslide.OpenSlide(linked_slide) as before:
        originals = dict(before.properties)
    with openslide.OpenSlide(output) as after:
        properties = dict(after.properties)
    for key in IDENTIFYING_KEYS:
        if key != "Date":
            assert f"aperio.{key}" not in properties
    for tag in IDENTIFYING_TAGS:
        assert f"tiff.{tag}" not in properties
    for key in ("AppMag", "MPP", "StripeWidth", "OriginalWidth", "Left", "Top"):
        assert properties[f"aperio.{key}"] == originals[f"aperio.{key}"]
    # No identifying text anywhere in the file, tags or data.
    content = output.read_bytes()
    secrets = [PATIENT_NAME, SLIDE_ID, PATIENT_ID, originals["tiff.Artist"],
               originals["tiff.HostComputer"], originals["tiff.DateTime"]]
    secrets += [originals[f"aperio.{key}"] for key in IDENTIFYING_KEYS
                if len(originals[f"aperio.{key}"]) >= 5]
    for secret in secrets:
        assert secret.encode() not in content


def test_a_linked_slide_gets_the_patients_dicom_pseudonym_and_date_shift(
        dropped, pseudonymizer):
    with openslide.OpenSlide(dropped.output) as slide:
        properties = dict(slide.properties)
    assert properties["aperio.PatientID"] == pseudonymizer.patient_id(PATIENT_ID)
    assert dropped.patient_id == (PATIENT_ID, pseudonymizer.patient_id(PATIENT_ID))
    shifted = shift_date("20120103", pseudonymizer.date_offset_days(PATIENT_ID))
    assert properties["aperio.Date"] == datetime.strptime(shifted, "%Y%m%d").strftime("%m/%d/%y")


def test_an_unlinked_slide_loses_its_date_and_a_caller_can_link_it(
        unlinked_slide, settings, pseudonymizer, tmp_path):
    unlinked = deidentify_slide(unlinked_slide, tmp_path / "a", settings, pseudonymizer)
    with openslide.OpenSlide(unlinked.output) as slide:
        assert "aperio.Date" not in slide.properties
        assert slide.level_dimensions[0] == (1000, 700)
    assert unlinked.patient_id is None

    linked = deidentify_slide(unlinked_slide, tmp_path / "b", settings, pseudonymizer,
                              patient_id="LIS-123")
    assert linked.patient_id == ("LIS-123", pseudonymizer.patient_id("LIS-123"))
    with openslide.OpenSlide(linked.output) as slide:
        assert slide.properties["aperio.Date"] != "01/03/12"


def test_every_change_is_audited_without_values(dropped):
    actions = {(row.keyword, row.action) for row in dropped.audit if row.path == "page[0]"}
    assert {("Filename", "delete"), ("Barcode", "delete"), ("AppMag", "keep"),
            ("Date", "shiftDateRandomNbOfDays"), ("PatientID", "patientHashID"),
            ("DateTime", "delete"), ("Artist", "delete")} <= actions
    text = repr(dropped.audit)
    assert PATIENT_NAME not in text and SLIDE_ID not in text and PATIENT_ID not in text


# -- output --------------------------------------------------------------------------------------

def test_the_output_has_a_keyed_name_and_is_deterministic(
        linked_slide, dropped, settings, pseudonymizer, tmp_path):
    assert re.fullmatch(r"[0-9A-F]{16}\.svs", dropped.output.name)
    assert [path.name for path in dropped.output.parent.iterdir()] == [dropped.output.name]
    again = deidentify_slide(linked_slide, tmp_path / "again", settings, pseudonymizer)
    assert again.output.name == dropped.output.name
    assert hashlib.sha256(again.output.read_bytes()).digest() == \
        hashlib.sha256(dropped.output.read_bytes()).digest()
    other_key = deidentify_slide(linked_slide, tmp_path / "other", settings,
                                 Pseudonymizer(b"another secret"))
    assert other_key.output.name != dropped.output.name


def test_verification_passes_the_output_and_fails_the_original(linked_slide, dropped,
                                                                relabelled, settings):
    assert verify_slide(linked_slide, dropped.output, settings, "drop") == []
    assert verify_slide(linked_slide, relabelled.output, settings, "pseudonym") == []
    problems = verify_slide(linked_slide, linked_slide, settings, "drop")
    assert "associated image macro left" in problems
    assert "property aperio.Filename left" in problems
    assert "property tiff.Artist left" in problems
    assert any("the original Barcode is in ImageDescription" in p for p in problems)
    # The label kept when it should have been dropped is a problem too.
    assert "associated image label left" in verify_slide(linked_slide, relabelled.output,
                                                        settings, "drop")
    assert not any(PATIENT_NAME in p or SLIDE_ID in p for p in problems)


def test_an_output_that_fails_verification_never_appears(
        linked_slide, settings, pseudonymizer, tmp_path, monkeypatch):
    monkeypatch.setattr(deidentify_module, "verify_slide", lambda *args: ["level 0 differs"])
    with pytest.raises(SlideError, match="failed verification: level 0 differs"):
        deidentify_slide(linked_slide, tmp_path, settings, pseudonymizer)
    assert list(tmp_path.iterdir()) == []


# -- bad input -----------------------------------------------------------------------------------

def write_not_a_tiff(path: Path, _: Path) -> None:
    path.write_bytes(b"\x00" * 128 + b"DICM" + bytes(range(256)) * 8)


def write_plain_tiff(path: Path, _: Path) -> None:
    tifffile.imwrite(path, np.zeros((64, 64, 3), np.uint8), photometric="rgb")


def write_generic_pyramid(path: Path, _: Path) -> None:
    tifffile.imwrite(path, np.zeros((512, 512, 3), np.uint8), photometric="rgb",
                     tile=(256, 256), compression="jpeg", description="Scanner X", metadata=None)


def write_truncated(path: Path, slide: Path) -> None:
    content = slide.read_bytes()
    path.write_bytes(content[:len(content) * 2 // 3])


@pytest.mark.parametrize("write, reason", [
    (write_not_a_tiff, "not a TIFF file"),
    (write_plain_tiff, "a TIFF that is not a whole-slide image"),
    (write_generic_pyramid, r"unsupported slide vendor \(generic-tiff\)"),
    (write_truncated, "truncated file"),
])
def test_bad_input_is_refused_with_a_reason(write, reason, linked_slide, settings,
                                            pseudonymizer, tmp_path):
    bad = tmp_path / "bad.svs"
    write(bad, linked_slide)
    with pytest.raises(SlideError, match=reason):
        deidentify_slide(bad, tmp_path / "out", settings, pseudonymizer)
    with pytest.raises(SlideError, match=reason):
        slide_metadata(bad, "bad.svs")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- metadata table ------------------------------------------------------------------------------

def test_metadata_rows_hold_every_description_key_and_each_levels_layout(linked_slide):
    rows = slide_metadata(linked_slide, "case/linked.svs")
    frame = slide_metadata_frame(rows)
    with openslide.OpenSlide(linked_slide) as slide:
        aperio_keys = {name.removeprefix("aperio.") for name in slide.properties
                       if name.startswith("aperio.")}
        dimensions = slide.level_dimensions
    level0 = frame[frame["image"] == "level0"]
    assert aperio_keys <= set(level0.loc[level0["source"] == "description", "name"])
    assert set(frame["image"]) == {"level0", "level1", "level2", "thumbnail", "label", "macro"}
    for level, (width, height) in enumerate(dimensions):
        tags = frame[(frame["image"] == f"level{level}") & (frame["source"] == "tiff")]
        values = dict(zip(tags["name"], tags["value"]))
        assert (values["ImageWidth"], values["ImageLength"]) == (str(width), str(height))
        assert (values["TileWidth"], values["Compression"]) == ("256", "JPEG")
    tiff0 = level0[level0["source"] == "tiff"].set_index("name")
    assert tiff0.loc["DateTime", "value"] == "2012:01:03 10:12:31"
    assert tiff0.loc["Software", "value"].startswith("Aperio")
    offsets = next(row for row in rows if row.page == 0 and row.name == "TileOffsets")
    assert (offsets.value, offsets.length) == (None, 48)  # data layout, not metadata
    assert (frame["file"] == "case/linked.svs").all()


# -- policy --------------------------------------------------------------------------------------

def test_the_default_policy_has_a_slides_section(settings):
    assert settings.label == "drop"
    assert settings.patient_key == "PatientID"
    assert {"Filename", "Barcode", "SlideId", "ScanScope ID"} <= set(settings.remove_keys)
    assert {"AppMag", "MPP"} <= set(settings.keep_keys)


def test_a_user_policy_overrides_only_the_slide_keys_it_names(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("slides:\n  label: pseudonym\n  keep_tiff_tags: [Software, 305]\n")
    slides = load_policy([site]).slides
    assert slides.label == "pseudonym"
    assert slides.keep_tiff_tags == frozenset({305})
    assert slides.remove_keys == load_policy().slides.remove_keys


@pytest.mark.parametrize("text, message", [
    ("slides:\n  label: burn\n", "slides.label must be one of drop, pseudonym"),
    ("slides:\n  keep_keys: AppMag\n", "slides.keep_keys must be a list"),
    ("slides:\n  keep_tiff_tags: [NoSuchTag]\n", "unknown TIFF tag 'NoSuchTag'"),
    ("slides:\n  colour: blue\n", "unknown slides key"),
    ("rules: []\nslides:\n  keep_keys: [Filename]\n", "both kept and removed: Filename"),
])
def test_a_bad_slides_section_is_rejected_with_its_line(text, message, tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(text)
    with pytest.raises(PolicyError, match=rf"site\.yaml:\d+: .*{re.escape(message)}"):
        load_policy([site])


# -- odd layouts and free text -------------------------------------------------------------------

SOFTWARE = "Aperio Image Library v12.0.15"


def small_slide(path: Path, *, header_text: str = "", label_second: bool = False,
                label_software: str = SOFTWARE) -> Path:
    """Two tiled levels and a label: after the levels, or right after level 0 where a
    thumbnail belongs (a slide scanned without one)."""
    rows, columns = np.mgrid[0:384, 0:512]
    pixels = np.stack([rows % 256, columns % 256, (rows + columns) % 256], -1).astype(np.uint8)
    label = np.full((48, 64, 3), 230, np.uint8)
    label[10:30, 8:56] = 0  # a barcode, say
    fields = "|AppMag = 40|MPP = 0.25|Filename = DOE JOHN"
    header = f"{SOFTWARE} {header_text}".rstrip() + " \r\n512x384 [0,0 512x384] (256x256)"

    def write_label(writer):
        writer.write(label, compression="lzw", photometric="rgb", subfiletype=1, metadata=None,
                     description=f"{label_software}\r\nlabel 64x48")

    with tifffile.TiffWriter(path) as writer:
        writer.write(pixels, tile=(256, 256), compression="jpeg", photometric="rgb",
                     metadata=None, description=f"{header} JPEG/RGB Q=70{fields}")
        if label_second:
            write_label(writer)
        writer.write(pixels[::2, ::2].copy(), tile=(256, 256), compression="jpeg",
                     photometric="rgb", metadata=None,
                     description=f"{header} -> 256x192 JPEG/RGB Q=70{fields}")
        if not label_second:
            write_label(writer)
    return path


@pytest.mark.parametrize(("label_mode", "associated", "action"), [
    ("drop", set(), "delete"), ("pseudonym", {"label"}, "replaceWithPseudonymLabel")])
def test_a_label_where_the_thumbnail_belongs_is_never_copied(settings, pseudonymizer, tmp_path,
                                                             label_mode, associated, action):
    source = small_slide(tmp_path / "no_thumbnail.svs", label_second=True)
    with openslide.OpenSlide(source) as before:  # OpenSlide calls the label a thumbnail
        assert set(before.associated_images) == {"thumbnail"}
        original_label = before.associated_images["thumbnail"].tobytes()

    result = deidentify_slide(source, tmp_path / "out", settings, pseudonymizer,
                              label_mode=label_mode)

    with openslide.OpenSlide(result.output) as after:
        assert set(after.associated_images) == associated
        assert after.level_dimensions == ((512, 384), (256, 192))
        assert all(image.tobytes() != original_label
                   for image in after.associated_images.values())
    assert ("label", action) in {(row.keyword, row.action) for row in result.audit
                                 if row.tag == "page"}


def test_free_text_in_a_description_header_is_dropped(settings, pseudonymizer, tmp_path):
    source = small_slide(tmp_path / "header.svs",
                         header_text="Patient DOE^JOHN MRN PHIMRN555 DOB 02/03/61")

    result = deidentify_slide(source, tmp_path / "out", settings, pseudonymizer)

    with tifffile.TiffFile(result.output) as tiff:
        descriptions = [page.description for page in tiff.pages]
    assert all("DOE" not in text and "PHIMRN555" not in text and "02/03/61" not in text
               for text in descriptions)
    assert descriptions[0].startswith(f"{SOFTWARE} \r\n512x384 [0,0 512x384] (256x256) "
                                      "JPEG/RGB Q=70|AppMag = 40|MPP = 0.25")
    assert ("header", "clean") in {(row.keyword, row.action) for row in result.audit}
    with openslide.OpenSlide(result.output) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "aperio"


def test_the_pseudonym_label_keeps_no_free_text_of_the_original_label(settings, pseudonymizer,
                                                                      tmp_path):
    source = small_slide(tmp_path / "label.svs", label_software=f"{SOFTWARE} DOE^JOHN")

    result = deidentify_slide(source, tmp_path / "out", settings, pseudonymizer,
                              label_mode="pseudonym")

    with tifffile.TiffFile(result.output) as tiff:
        assert all("DOE" not in page.description for page in tiff.pages)
    with openslide.OpenSlide(result.output) as slide:
        assert "label" in slide.associated_images


def test_verification_fails_an_output_with_free_text_in_a_header(settings, tmp_path):
    source = small_slide(tmp_path / "header.svs", header_text="Patient DOE^JOHN")

    assert "page 0: words in the ImageDescription header that do not describe the image" in \
        verify_slide(source, source, settings)
