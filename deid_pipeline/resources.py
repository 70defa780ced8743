"""Resources: where the pipeline reads drops and keeps its tables."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from dagster import ConfigurableResource

from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.policy.rules import Policy
from deid_pipeline.core.pseudonyms import Pseudonymizer

DATA_ROOT_ENV = "DEID_DATA_ROOT"


def default_data_root() -> str:
    """`$DEID_DATA_ROOT`, else `data/` under the working directory (the project root for
    `make demo` and `dagster dev`)."""
    return os.environ.get(DATA_ROOT_ENV) or str(Path.cwd() / "data")


class DataLake(ConfigurableResource):
    """A local folder laid out as `incoming/<day>/` (what sites drop) and
    `tables/<table>/<day>.parquet` (what the pipeline derives, readable by DuckDB)."""

    root: str

    @property
    def root_path(self) -> Path:
        return Path(self.root)

    def incoming(self, partition: str) -> Path:
        return Path(self.root) / "incoming" / partition

    def deidentified(self, partition: str) -> Path:
        return Path(self.root) / "deidentified" / partition

    def work(self, partition: str) -> Path:
        """Mapping files, audit and quarantine of a partition: they re-identify, so they live
        outside every output tree."""
        return Path(self.root) / "work" / partition

    def table_path(self, table: str, partition: str) -> Path:
        return Path(self.root) / "tables" / table / f"{partition}.parquet"

    def write_table(self, table: str, partition: str, frame: pd.DataFrame) -> Path:
        path = self.table_path(table, partition)
        write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))
        return path

    def read_table(self, table: str, partition: str) -> pd.DataFrame:
        return pd.read_parquet(self.table_path(table, partition))


class PseudonymKey(ConfigurableResource):
    """The key of every pseudonym, read from `DEID_SECRET` or `DEID_SECRET_FILE` when a step
    runs, so it never sits in run config, the event log or code."""

    def pseudonymizer(self, policy: Policy) -> Pseudonymizer:
        return Pseudonymizer.from_environment(min_shift_days=policy.shift_min_days,
                                              max_shift_days=policy.shift_max_days)
