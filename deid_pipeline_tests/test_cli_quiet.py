"""Values quoted by pydicom's warnings never reach the terminal: they can be PHI."""

import subprocess
import sys
from pathlib import Path

from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

ODD_DATE = "1986/03/15"


def test_deid_prints_no_value_from_a_file_with_odd_values(tmp_path):
    ds = ct_with_nested_and_private()
    ds.PatientBirthDate = ODD_DATE  # invalid DA: pydicom warns and logs it, quoting the value
    ds.StudyDate = "2012.01.03"
    write(ds, tmp_path / "in" / "1.dcm")
    cli = Path(sys.executable).with_name("deid-pipeline")

    done = subprocess.run(
        [str(cli), "deid", str(tmp_path / "in"), str(tmp_path / "out"), "--work",
         str(tmp_path / "work")], capture_output=True, text=True, timeout=120,
        env={"DEID_SECRET": "s", "PATH": str(cli.parent)})

    assert done.returncode in (0, 3), done.stderr
    for text in (ODD_DATE, "2012.01.03", "DOE", "MRN12345"):
        assert text not in done.stdout + done.stderr
