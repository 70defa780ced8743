import sqlite3
from contextlib import closing

from deid_pipeline.core.validate.midib import RESULT_COLUMNS, results_frame
from deid_pipeline.core.validate.results_db import RESULTS_TABLE, SCORING_TABLE, write_results_db


def results():
    rows = []
    for passed, action in [(True, "<uid_changed>"), (False, "<text_removed>"),
                           (True, "<text_removed>")]:
        row = dict.fromkeys(RESULT_COLUMNS, "")
        row.update(check_passed=passed, check_score=int(passed), action=action, modality="CT")
        rows.append(row)
    return results_frame(rows)


def test_results_database_has_the_reference_columns_and_the_scoring(tmp_path):
    path = tmp_path / "midib_results.sqlite"
    write_results_db(results(), path)

    with closing(sqlite3.connect(path)) as db:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({RESULTS_TABLE})")]
        passed = db.execute(f"SELECT action, check_passed FROM {RESULTS_TABLE}").fetchall()
        scoring = dict(db.execute(f"SELECT Category, Fail FROM {SCORING_TABLE}").fetchall())

    assert columns == list(RESULT_COLUMNS)
    assert passed == [("<uid_changed>", 1), ("<text_removed>", 0), ("<text_removed>", 1)]
    assert scoring == {"<text_removed>": 1, "<uid_changed>": 0, "All": 1}
    assert not list(tmp_path.glob(".*"))  # written whole, no temporary file left


def test_results_frame_keeps_its_schema_without_rows():
    empty = results_frame([])
    assert list(empty.columns) == list(RESULT_COLUMNS)
    assert empty["check_passed"].dtype == bool and empty["check_score"].dtype == "int64"
    assert results()["check_passed"].tolist() == [True, False, True]


def test_the_same_results_give_the_same_database_bytes(tmp_path):
    write_results_db(results(), tmp_path / "a.sqlite")
    write_results_db(results(), tmp_path / "b.sqlite")
    assert (tmp_path / "a.sqlite").read_bytes() == (tmp_path / "b.sqlite").read_bytes()
