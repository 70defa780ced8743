"""The metadata table of many files at once: every file's elements flattened (core.metadata),
and a count of the files that could not be parsed.

Parsing is most of the work (pydicom's value conversion: 5 ms a file on one core), so chunks of
files are read in worker processes, each handing back a compact Arrow table; a night's table is
written to Parquet row group by row group as the chunks come, never held whole (10,000 files are
1.26 million rows: 561 MiB as a pandas frame)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deid_pipeline.core.metadata import (
    METADATA_SCHEMA,
    ElementRow,
    metadata_table,
    read_element_rows,
    table_to_frame,
)
from deid_pipeline.core.workers import WorkerPool

# Files a worker reads at a time: enough to outweigh handing the chunk over, few enough that the
# last chunks spread over the workers.
CHUNK = 64
# Rows a Parquet row group holds at most (what the writer buffers): ~20 MB of text.
ROW_GROUP_ROWS = 128 * 1024


@dataclass(frozen=True)
class TreeMetadata:
    frame: pd.DataFrame  # core.metadata.METADATA_COLUMNS, `file` the path relative to the folder
    unparsable: int


@dataclass(frozen=True)
class MetadataCounts:
    """What a written metadata table holds, counted as it was written."""

    files: int
    elements: int
    unparsable: int
    in_sequences: int
    private: int


def read_metadata_chunk(folder: Path, relpaths: Sequence[str]) -> tuple[pa.Table, int]:
    """The element rows of each file `folder / relpath`, and how many could not be parsed."""
    unparsable = 0

    def rows() -> Iterator[ElementRow]:
        nonlocal unparsable
        for relpath in relpaths:
            try:
                file_rows = read_element_rows(folder / relpath, relpath)
            # The deid stage quarantines such a file with its reason; here it is only counted.
            except Exception:  # noqa: BLE001
                unparsable += 1
                continue
            yield from file_rows

    table = metadata_table(rows())
    return table, unparsable


def metadata_chunks(folder: Path, relpaths: Sequence[str],
                    jobs: int = 1) -> Iterator[tuple[pa.Table, int]]:
    """read_metadata_chunk of each CHUNK of files, in order, on `jobs` worker processes; a file
    that kills its worker (a crash in a codec's native code) counts as unparsable."""
    relpaths = list(relpaths)
    chunks = [relpaths[start:start + CHUNK] for start in range(0, len(relpaths), CHUNK)]
    read = partial(read_metadata_chunk, folder)
    if jobs <= 1 or len(chunks) <= 1:
        yield from map(read, chunks)
        return
    pool = WorkerPool(min(jobs, len(chunks)))
    for _, result in pool.map(read, chunks,
                              crashed=lambda relpath: (METADATA_SCHEMA.empty_table(), 1)):
        yield result


def write_tree_metadata(folder: Path, relpaths: Sequence[str], path: Path,
                        jobs: int = 1) -> MetadataCounts:
    """The metadata table of the files, written to Parquet at `path` as it is read."""
    files = elements = unparsable = in_sequences = private = 0
    pending: list[pa.Table] = []
    pending_rows = 0
    with pq.ParquetWriter(path, METADATA_SCHEMA) as writer:
        for table, failed in metadata_chunks(folder, relpaths, jobs):
            unparsable += failed
            files += len(table.column("file").unique())
            elements += table.num_rows
            in_sequences += pc.sum(pc.greater(table.column("depth"), 0)).as_py() or 0
            private += table.num_rows - table.column("private_creator").null_count
            pending.append(table)
            pending_rows += table.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
    return MetadataCounts(files, elements, unparsable, in_sequences, private)


def tree_metadata(folder: Path, relpaths: Sequence[str], jobs: int = 1) -> TreeMetadata:
    """The metadata table of the files, in memory (for a check that compares it whole)."""
    tables, unparsable = [METADATA_SCHEMA.empty_table()], 0
    for table, failed in metadata_chunks(folder, relpaths, jobs):
        tables.append(table)
        unparsable += failed
    return TreeMetadata(table_to_frame(pa.concat_tables(tables)), unparsable)
