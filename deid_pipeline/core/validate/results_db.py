"""The MIDI-B results as an SQLite database with the reference program's column names, for tools
written against its output: one row per check in `RESULTS_TABLE`, the Scoring sheet in
`SCORING_TABLE`."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd

from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.validate.midib import RESULT_COLUMNS, scoring

RESULTS_TABLE = "midib_results"
SCORING_TABLE = "scoring"


def write_results_db(results: pd.DataFrame, path: Path) -> None:
    def write(tmp: Path) -> None:
        with closing(sqlite3.connect(tmp)) as db:
            results[list(RESULT_COLUMNS)].to_sql(RESULTS_TABLE, db, index=False)
            scoring(results).to_sql(SCORING_TABLE, db, index=False)
            db.commit()

    write_atomically(Path(path), write)
