"""The per-element audit table (file, element path, tag, keyword, action, rule; never a value),
written to Parquet as the batch goes: a night's audit has millions of rows."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from deid_pipeline.core.atomic import write_staged
from deid_pipeline.core.deid.engine import AuditRow
from deid_pipeline.core.quarantine import OWNER_ONLY_FILE

COLUMNS = ("file", "path", "tag", "keyword", "action", "rule")
# Every column repeats a few hundred distinct values: dictionary-encoded in memory and on disk.
DICTIONARY = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema([(name, DICTIONARY) for name in COLUMNS])
ROWS_PER_GROUP = 200_000


def audit_batch(files: Sequence[tuple[str, Sequence[AuditRow]]]) -> pa.RecordBatch:
    """Several files' rows, in order, as one dictionary-encoded batch. It is made where the files
    were de-identified (a worker process), for a chunk of files at a time: the batch's own
    process, which every file passes through, then only collects batches, where a list of row
    tuples would cost it more to receive and turn into columns than the worker spends making
    this, and a batch per file more to receive and unify."""
    counts = [len(rows) for _, rows in files]
    names = pa.array([name for name, _ in files], pa.string())
    file_column = pa.DictionaryArray.from_arrays(
        pa.array(np.repeat(np.arange(len(files), dtype=np.int32), counts)), names)
    rows = [row for _, file_rows in files for row in file_rows]
    columns = zip(*rows) if rows else [()] * (len(COLUMNS) - 1)
    return pa.RecordBatch.from_arrays(
        [file_column, *(pa.array(column, DICTIONARY) for column in columns)], schema=SCHEMA)


class AuditWriter:
    """Collects files' batches and writes a row group whenever enough rows have gathered; the
    table appears (atomically, owner-only) when the writer closes without error."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.actions: Counter[str] = Counter()
        self._batches: list[pa.RecordBatch] = []
        self._rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> AuditWriter:
        self._tmp = write_staged(self.path, lambda tmp: None)
        self._writer = pq.ParquetWriter(self._tmp, SCHEMA)
        return self

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._batches.append(batch)
            self._rows += batch.num_rows
        if self._rows >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._batches:
            # One dictionary per column for the row group, as the readers of the table expect.
            table = pa.Table.from_batches(self._batches, SCHEMA).unify_dictionaries()
            table = table.combine_chunks()
            actions = table.column("action").chunk(0)
            counts = np.bincount(actions.indices.to_numpy(zero_copy_only=False),
                                 minlength=len(actions.dictionary))
            self.actions.update({action: int(count) for action, count
                                 in zip(actions.dictionary.to_pylist(), counts, strict=True)
                                 if count})
            self._writer.write_table(table)
            self._batches, self._rows = [], 0

    def __exit__(self, kind, error, traceback) -> None:
        try:
            self._flush()
        finally:
            self._writer.close()
        if error is None:
            os.chmod(self._tmp, OWNER_ONLY_FILE)
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
