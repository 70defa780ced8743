"""The pixel assets materialized on a small drop: what a person reads in their metadata."""

import base64
import re

import cv2
import numpy as np
import pytest
from dagster import materialize

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import dicom_metadata
from deid_pipeline.assets.pixels import encoded_dicom, pixel_phi_findings, redacted_dicom
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.resources import DataLake, PseudonymKey
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

DAY = "2026-01-15"
PIXEL_ASSETS = ["pixel_phi_findings", "redacted_dicom", "encoded_dicom"]
INLINE_PNG = re.compile(r"!\[redaction\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def image(n: int, text: str | None):
    """A 256×256 CT of noise, with `text` burned in large enough to read."""
    ds = ct_with_nested_and_private()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.4.5.6.7.1.{n}"
    ds.Rows = ds.Columns = 256
    ink = np.zeros((256, 256), dtype=np.uint8)
    if text:
        cv2.putText(ink, text, (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    noise = np.random.default_rng(n).integers(300, 600, size=(256, 256))
    ds.PixelData = np.where(ink > 0, 4095, noise).astype("<u2").tobytes()
    return ds


def run(tmp_path, texts):
    for n, text in enumerate(texts, start=1):
        write(image(n, text), tmp_path / "incoming" / DAY / f"{n}.dcm")
    result = materialize(
        [incoming_dicom, dicom_metadata, deidentified_dicom, pixel_phi_findings, redacted_dicom,
         encoded_dicom],
        partition_key=DAY,
        resources={"lake": DataLake(root=str(tmp_path)), "pseudonym_key": PseudonymKey()},
        run_config={"ops": {"pixel_phi_findings": {"config": {"workers": 2}}}})
    assert result.success
    return {node: result.asset_materializations_for_node(node)[0].metadata
            for node in PIXEL_ASSETS}


@pytest.mark.usefixtures("deid_secret")
def test_pixel_assets_report_counts_quarantine_time_and_a_thumbnail(tmp_path):
    metadata = run(tmp_path, ["DOE JANE", None])

    for node in PIXEL_ASSETS:
        values = metadata[node]
        assert values["files"].value == 2, node
        assert values["quarantined"].value == 0, node
        assert values["seconds_per_file"].value > 0, node
        assert values["workers"].value >= 1, node
        assert values["outcomes"].value.startswith("| outcome | files |"), node
    assert metadata["pixel_phi_findings"]["workers"].value == 2
    assert metadata["pixel_phi_findings"]["files_with_phi"].value == 1
    assert metadata["redacted_dicom"]["redacted"].value == 1
    assert "| redacted | 1 |" in metadata["redacted_dicom"]["outcomes"].value

    preview = metadata["redacted_dicom"]["redaction"].value
    png = base64.b64decode(INLINE_PNG.search(preview).group(1))
    thumbnail = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert thumbnail.shape == (128, 128) and thumbnail.dtype == np.uint8
    # Where the name was burned in, filled black: the darkest band of the blurred thumbnail.
    assert thumbnail[26:29, 20:55].mean() < 0.5 * thumbnail[64:, :].mean()
    # No text read reaches the metadata (the image aside: base64 spells anything now and then).
    text = " ".join(str(v.value) for values in metadata.values() for key, v in values.items()
                    if key != "redaction")
    assert "DOE" not in text and "JANE" not in text


@pytest.mark.usefixtures("deid_secret")
def test_a_partition_without_burned_in_text_says_so(tmp_path):
    metadata = run(tmp_path, [None])
    assert metadata["redacted_dicom"]["redacted"].value == 0
    assert metadata["redacted_dicom"]["redaction"].value == (
        "No file of this partition needed redaction.")
