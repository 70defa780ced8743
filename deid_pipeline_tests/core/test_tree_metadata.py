import pandas as pd
import pyarrow.parquet as pq
import pytest

from deid_pipeline.core import tree_metadata as module
from deid_pipeline.core.metadata import METADATA_COLUMNS, table_to_frame
from deid_pipeline.core.tree_metadata import MetadataCounts, tree_metadata, write_tree_metadata
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write


def test_every_file_is_flattened_and_those_that_cannot_be_read_are_counted(tmp_path):
    write(ct_with_nested_and_private(), tmp_path / "a" / "1.dcm")

    read = tree_metadata(tmp_path, ["a/1.dcm", "gone.dcm"])

    assert read.unparsable == 1
    assert set(read.frame["file"]) == {"a/1.dcm"}
    assert read.frame.loc[read.frame["keyword"] == "PatientID", "value"].tolist() == ["MRN12345"]


@pytest.fixture
def tree(tmp_path):
    """Seven readable files and one that is not DICOM."""
    folder = tmp_path / "in"
    relpaths = []
    for index in range(7):
        ds = ct_with_nested_and_private()
        ds.PatientID = f"MRN{index}"
        relpaths.append(write(ds, folder / f"{index}.dcm").relative_to(folder).as_posix())
    (folder / "notes.dcm").write_text("not DICOM")
    relpaths.insert(3, "notes.dcm")
    return folder, relpaths


def test_chunks_read_by_worker_processes_come_back_as_one_read_alone_would(tree, monkeypatch):
    folder, relpaths = tree
    monkeypatch.setattr(module, "CHUNK", 2)  # five chunks over two workers

    alone = tree_metadata(folder, relpaths, jobs=1)
    pooled = tree_metadata(folder, relpaths, jobs=2)

    assert pooled.unparsable == alone.unparsable == 1
    assert pooled.frame.equals(alone.frame)
    assert pooled.frame["file"].unique().tolist() == [p for p in relpaths if p != "notes.dcm"]


def test_the_written_table_is_the_read_one_with_its_counts(tree, tmp_path, monkeypatch):
    folder, relpaths = tree
    monkeypatch.setattr(module, "CHUNK", 2)
    monkeypatch.setattr(module, "ROW_GROUP_ROWS", 50)  # each file has more elements than that
    path = tmp_path / "metadata.parquet"

    counts = write_tree_metadata(folder, relpaths, path, jobs=2)

    frame = tree_metadata(folder, relpaths).frame
    written = pq.ParquetFile(path)
    assert written.metadata.num_row_groups > 1
    assert max(written.metadata.row_group(group).num_rows
               for group in range(written.metadata.num_row_groups)) <= 50
    assert table_to_frame(pq.read_table(path)).equals(frame)
    assert counts == MetadataCounts(
        files=7, elements=len(frame), unparsable=1,
        in_sequences=int((frame["depth"] > 0).sum()),
        private=int(frame["private_creator"].notna().sum()))
    assert counts.in_sequences > 0 and counts.private > 0


def test_a_tree_without_files_is_an_empty_table_with_its_columns(tmp_path):
    path = tmp_path / "metadata.parquet"

    counts = write_tree_metadata(tmp_path, [], path, jobs=2)

    assert counts == MetadataCounts(0, 0, 0, 0, 0)
    table = pd.read_parquet(path)
    assert table.empty and list(table.columns) == list(METADATA_COLUMNS)
    assert table["depth"].dtype == "int64"
