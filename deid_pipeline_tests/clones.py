"""Many distinct small DICOM files, fast: one realistic image is encoded once and copied with its
patient, study, series and instance tokens replaced by numbers of the same width, so no length
field changes and no file is encoded again (10,000 files in a few seconds)."""

from __future__ import annotations

import io
from pathlib import Path

from deid_pipeline_tests.dicom_factory import Patient, Study, realistic_image

FILES_PER_SERIES = 10
FILES_PER_PATIENT = 50
# Fixed-width tokens of the template, each replaced wherever it occurs (names, IDs, free text,
# UIDs derived from the study UID). UID components start with 1: no leading zeros (PS3.5 9.1).
PATIENT_TOKEN = b"PQ00000"
STUDY_TOKEN = b"9.6666.1.100000"
SERIES_TOKEN = b"9.6666.2.10000000"
INSTANCE_TOKEN = b"9.6666.3.10000000"
UID_ROOT = "1.2.826.0.1.3680043."


def template() -> bytes:
    ds = realistic_image(
        patient=Patient(name=f"CLONEFAMILY^{PATIENT_TOKEN.decode()}",
                        patient_id=f"{PATIENT_TOKEN.decode()}-ID"),
        study=Study(study_uid=UID_ROOT + STUDY_TOKEN.decode()),
        series_uid=UID_ROOT + SERIES_TOKEN.decode(), sop_uid=UID_ROOT + INSTANCE_TOKEN.decode())
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_clones(root: Path, count: int) -> list[Path]:
    """`count` files under root/<patient>/<series>/, every one its own instance; 50 a patient
    (one study each), 10 a series."""
    data = template()
    paths = []
    for index in range(count):
        patient, series = index // FILES_PER_PATIENT, index // FILES_PER_SERIES
        clone = (data.replace(PATIENT_TOKEN, b"PQ%05d" % patient)
                 .replace(STUDY_TOKEN, b"9.6666.1.1%05d" % patient)
                 .replace(SERIES_TOKEN, b"9.6666.2.1%07d" % series)
                 .replace(INSTANCE_TOKEN, b"9.6666.3.1%07d" % index))
        path = Path(root) / f"PQ{patient:05d}" / f"S{series:05d}" / f"IM{index:06d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(clone)
        paths.append(path)
    return paths
