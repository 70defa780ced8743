"""The lake on S3: drops staged down, tables published up as whole objects, against a real
S3-compatible server (moto) on loopback."""

import io

import pandas as pd
from dagster import DagsterInstance, build_sensor_context, materialize

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import dicom_metadata
from deid_pipeline.resources import DataLake
from deid_pipeline.sensors import new_drop_sensor
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private
from deid_pipeline_tests.s3_server import s3, s3_server  # noqa: F401 (fixtures)

DAY = "2026-01-15"


def dicom_bytes() -> bytes:
    buffer = io.BytesIO()
    ct_with_nested_and_private().save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def read_parquet_object(client, bucket: str, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(client.get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_ingest_and_metadata_read_an_s3_drop_and_publish_their_tables(s3, tmp_path):
    client = s3.client()
    for bucket in ("site-drops", "deid-outputs", "deid-work"):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket="site-drops", Key=f"acme/incoming/{DAY}/DOE_JANE/1.dcm",
                      Body=dicom_bytes())
    # An upload still in progress under a hidden name is not part of the drop.
    client.put_object(Bucket="site-drops", Key=f"acme/incoming/{DAY}/.2.dcm.part", Body=b"\0")
    lake = DataLake(root="s3://deid-outputs/acme", incoming_root="s3://site-drops/acme",
                    private_root="s3://deid-work/acme", staging_dir=str(tmp_path / "staging"),
                    s3=s3.resource())

    result = materialize([incoming_dicom, dicom_metadata], partition_key=DAY,
                         resources={"lake": lake})

    assert result.success
    ingest_meta = result.asset_materializations_for_node("incoming_dicom")[0].metadata
    assert ingest_meta["files"].value == 1
    assert ingest_meta["table"].value == f"s3://deid-work/acme/tables/incoming_dicom/{DAY}.parquet"
    # Tables re-identify (file paths, original values): they go to the private bucket only.
    assert "Contents" not in client.list_objects_v2(Bucket="deid-outputs")
    manifest = read_parquet_object(client, "deid-work",
                                   f"acme/tables/incoming_dicom/{DAY}.parquet")
    assert manifest["relpath"].tolist() == ["DOE_JANE/1.dcm"]
    metadata = read_parquet_object(client, "deid-work",
                                   f"acme/tables/dicom_metadata/{DAY}.parquet")
    assert metadata.loc[metadata["keyword"] == "CodeValue", "value"].tolist() == ["CTCHEST"]
    # What was published reads back through the lake in another process's empty staging folder.
    fresh = lake.model_copy(update={"staging_dir": str(tmp_path / "other_staging")})
    pd.testing.assert_frame_equal(fresh.read_table("dicom_metadata", DAY), metadata)


def test_a_missing_s3_drop_fails_with_its_location(s3, tmp_path):
    s3.client().create_bucket(Bucket="lake")
    lake = DataLake(root="s3://lake", staging_dir=str(tmp_path), s3=s3.resource())

    result = materialize([incoming_dicom], partition_key=DAY, resources={"lake": lake},
                         raise_on_error=False)

    failure = result.failure_data_for_node("incoming_dicom")
    assert f"no drop folder for {DAY}: s3://lake/incoming/{DAY}" in failure.error.message


def test_staging_follows_the_bucket_and_publishing_replaces_the_folder(s3, tmp_path):
    client = s3.client()
    client.create_bucket(Bucket="lake")
    lake = DataLake(root="s3://lake/site", staging_dir=str(tmp_path), s3=s3.resource())
    client.put_object(Bucket="lake", Key=f"site/incoming/{DAY}/a.dcm", Body=b"first")
    client.put_object(Bucket="lake", Key=f"site/incoming/{DAY}/b.dcm", Body=b"gone soon")
    folder = lake.stage_incoming(DAY)
    assert (folder / "a.dcm").read_bytes() == b"first"

    # A site repairs one file and withdraws another: staging again shows exactly that.
    client.put_object(Bucket="lake", Key=f"site/incoming/{DAY}/a.dcm", Body=b"repaired")
    client.delete_object(Bucket="lake", Key=f"site/incoming/{DAY}/b.dcm")
    lake.stage_incoming(DAY)
    assert sorted(p.name for p in folder.iterdir()) == ["a.dcm"]
    assert (folder / "a.dcm").read_bytes() == b"repaired"

    # A re-run's output replaces the earlier one whole: no object of the earlier run lingers.
    out = lake.deidentified(DAY)
    (out / "old").mkdir(parents=True)
    (out / "old" / "1.dcm").write_bytes(b"old")
    assert lake.publish(out) == f"s3://lake/site/deidentified/{DAY}"
    (out / "old" / "1.dcm").unlink()
    (out / "new").mkdir()
    (out / "new" / "1.dcm").write_bytes(b"new")
    (out / "new" / ".1.dcm.tmp").write_bytes(b"a temporary of a crashed write")
    lake.publish(out)
    keys = [e["Key"] for e in client.list_objects_v2(Bucket="lake",
                                                     Prefix="site/deidentified/")["Contents"]]
    assert keys == [f"site/deidentified/{DAY}/new/1.dcm"]


def test_sensor_sees_new_day_prefixes_in_the_bucket(s3, tmp_path, monkeypatch):
    # The lake without client settings, as deployed: boto3 finds the endpoint in the environment.
    for name, value in s3.environment().items():
        monkeypatch.setenv(name, value)
    client = s3.client()
    client.create_bucket(Bucket="drops")
    client.put_object(Bucket="drops", Key="incoming/2026-01-14/x.dcm", Body=b"x")
    client.put_object(Bucket="drops", Key="incoming/2026-01-15/", Body=b"")  # a folder marker
    lake = DataLake(root="s3://drops", staging_dir=str(tmp_path))

    with DagsterInstance.ephemeral() as instance:
        with build_sensor_context(instance=instance, resources={"lake": lake}) as context:
            first = new_drop_sensor(context)
        assert [r.partition_key for r in first.run_requests] == ["2026-01-14"]

        client.put_object(Bucket="drops", Key="incoming/2026-01-15/y.dcm", Body=b"y")
        with build_sensor_context(instance=instance, cursor=first.cursor,
                                  resources={"lake": lake}) as context:
            second = new_drop_sensor(context)
    assert [r.partition_key for r in second.run_requests] == ["2026-01-15"]
