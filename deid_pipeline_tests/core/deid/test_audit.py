"""The audit table: files' rows in the order they were added, one dictionary per column."""

from __future__ import annotations

import pickle

import pyarrow.parquet as pq

from deid_pipeline.core.deid import audit as audit_module
from deid_pipeline.core.deid.audit import AuditWriter, audit_batch
from deid_pipeline.core.deid.engine import AuditRow


def rows(count: int, action: str) -> list[AuditRow]:
    return [AuditRow(f"(0010,{n:04X})", f"(0010,{n:04X})", f"Keyword{n}", action, "annex-e X")
            for n in range(count)]


def test_rows_of_every_file_come_back_in_order_with_the_action_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(audit_module, "ROWS_PER_GROUP", 5)  # several row groups
    files = {"a.dcm": rows(3, "delete"), "b.dcm": [], "c.dcm": rows(4, "keep"),
             "d.dcm": rows(2, "keep")}
    chunks = [["a.dcm", "b.dcm", "c.dcm"], ["d.dcm"]]
    with AuditWriter(tmp_path / "audit.parquet") as writer:
        for chunk in chunks:
            # As a worker hands it over.
            batch = audit_batch([(name, files[name]) for name in chunk])
            writer.add(pickle.loads(pickle.dumps(batch)))
    table = pq.read_table(tmp_path / "audit.parquet")
    expected = [(name, *row) for name, file_rows in files.items() for row in file_rows]
    assert list(zip(*(table.column(c).to_pylist() for c in audit_module.COLUMNS),
                    strict=True)) == expected
    assert writer.actions == {"delete": 3, "keep": 6}


def test_no_table_appears_when_the_batch_fails(tmp_path):
    try:
        with AuditWriter(tmp_path / "audit.parquet") as writer:
            writer.add(audit_batch([("a.dcm", rows(2, "keep"))]))
            raise RuntimeError("the batch broke")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
