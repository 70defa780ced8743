"""The assets apply the site's policy files named by DEID_POLICY over the packaged default."""

import os

import pydicom
from dagster import materialize

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import dicom_metadata
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.resources import DataLake, PseudonymKey
from deid_pipeline.site_policy import POLICY_ENV, site_policy
from deid_pipeline_tests.dicom_factory import realistic_image, write

DAY = "2026-01-15"


def test_files_named_by_the_environment_are_layered_in_order(tmp_path, monkeypatch):
    first, second = tmp_path / "site.yaml", tmp_path / "department.yaml"
    first.write_text("rules:\n  - keyword: InstitutionName\n    action: replaceWithLiteral\n"
                     "    value: SITE\n")
    second.write_text("pixels:\n  zones:\n    - manufacturer: ACME\n"
                      "      boxes: [[0, 0, 9, 9]]\n")
    monkeypatch.setenv(POLICY_ENV, os.pathsep.join([str(first), str(second)]))

    policy = site_policy()

    assert policy.sources[1:] == (str(first), str(second))
    assert [zone.manufacturer for zone in policy.pixels.zones] == ["ACME"]
    monkeypatch.delenv(POLICY_ENV)
    assert site_policy().sources == policy.sources[:1]  # the packaged default alone


def test_the_tag_step_applies_the_site_policy(tmp_path, monkeypatch, deid_secret):
    policy = tmp_path / "site.yaml"
    policy.write_text("rules:\n  - keyword: InstitutionName\n    action: replaceWithLiteral\n"
                      "    value: SITE 7\n")
    monkeypatch.setenv(POLICY_ENV, str(policy))
    lake = DataLake(root=str(tmp_path / "lake"))
    write(realistic_image(), lake.incoming(DAY) / "DOE" / "1.dcm")

    result = materialize([incoming_dicom, dicom_metadata, deidentified_dicom], partition_key=DAY,
                         resources={"lake": lake, "pseudonym_key": PseudonymKey()})

    assert result.success
    (output,) = lake.deidentified(DAY).rglob("*.dcm")
    assert pydicom.dcmread(output).InstitutionName == "SITE 7"
