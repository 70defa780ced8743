"""The per-element audit table (file, element path, tag, keyword, action, rule; never a value),
written to Parquet as the batch goes: a night's audit has millions of rows."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deid_pipeline.core.atomic import write_staged
from deid_pipeline.core.deid.engine import AuditRow
from deid_pipeline.core.quarantine import OWNER_ONLY_FILE

COLUMNS = ("file", "path", "tag", "keyword", "action", "rule")
# Every column repeats a few hundred distinct values: dictionary-encoded in memory and on disk.
SCHEMA = pa.schema([(name, pa.dictionary(pa.int32(), pa.string())) for name in COLUMNS])
ROWS_PER_GROUP = 200_000


class AuditWriter:
    """Collects rows file by file and writes a row group whenever enough have gathered; the
    table appears (atomically, owner-only) when the writer closes without error."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.actions: Counter[str] = Counter()
        self._columns: list[list[str]] = [[] for _ in COLUMNS]
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> AuditWriter:
        self._tmp = write_staged(self.path, lambda tmp: None)
        self._writer = pq.ParquetWriter(self._tmp, SCHEMA)
        return self

    def add(self, file: str, rows: Iterable[AuditRow]) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return
        files, *rest = self._columns
        # Column by column: the rows are tuples of the columns after "file".
        for column, values in zip(rest, zip(*rows), strict=True):
            column.extend(values)
        self.actions.update(row[3] for row in rows)
        files.extend([file] * len(rows))
        if len(files) >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._columns[0]:
            arrays = [pa.array(column, pa.string()).dictionary_encode()
                      for column in self._columns]
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA))
            self._columns = [[] for _ in COLUMNS]

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
