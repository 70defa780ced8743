"""Resources: where the pipeline reads drops and keeps its tables."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource

from deid_pipeline.core.atomic import Written, write_atomically
from deid_pipeline.core.policy.rules import Policy
from deid_pipeline.core.pseudonyms import Pseudonymizer, is_production
from deid_pipeline.storage import ObjectStore, is_hidden, is_object_url

DATA_ROOT_ENV = "DEID_DATA_ROOT"
INCOMING_ROOT_ENV = "DEID_INCOMING_ROOT"
PRIVATE_ROOT_ENV = "DEID_PRIVATE_ROOT"
STAGING_DIR_ENV = "DEID_STAGING_DIR"
# Areas that re-identify (mapping files, audit, quarantine; tables of original values) and so
# belong with `private_root`; every other area but `incoming` belongs with `root`.
PRIVATE_AREAS = frozenset({"work", "tables"})


def default_data_root() -> str:
    """`$DEID_DATA_ROOT`, else `data/` under the working directory (the project root for
    `make demo` and `dagster dev`)."""
    return os.environ.get(DATA_ROOT_ENV) or str(Path.cwd() / "data")


def lake_from_environment() -> DataLake:
    """The lake the code location uses: `$DEID_DATA_ROOT` (see `default_data_root`), with the
    drop area and the private areas elsewhere when `$DEID_INCOMING_ROOT` / `$DEID_PRIVATE_ROOT`
    say so (separate buckets in production)."""
    return DataLake(root=default_data_root(),
                    incoming_root=os.environ.get(INCOMING_ROOT_ENV) or None,
                    private_root=os.environ.get(PRIVATE_ROOT_ENV) or None,
                    staging_dir=os.environ.get(STAGING_DIR_ENV) or None)


class DataLake(ConfigurableResource):
    """Where drops arrive and outputs go, laid out as `incoming/<day>/` (what sites drop),
    `tables/<table>/<day>.parquet` (what the pipeline derives, readable by DuckDB),
    `deidentified/<day>/` and `work/<day>/`.

    Each root is a local folder or an S3 location `s3://bucket/prefix`. Assets always work on
    local paths: `stage(path)` (or `stage_incoming(day)`) brings an S3 area down into a local
    staging folder first, and `publish(path)` puts what an asset wrote back, one whole object per
    file, so an object is only ever seen complete. On a local root both are no-ops.
    """

    root: str
    # Where sites drop (`incoming/`); default: `root`.
    incoming_root: str | None = None
    # Where `work/` and `tables/` go, which re-identify; default: `root`.
    private_root: str | None = None
    # Local mirror of the S3 areas; default: a folder per lake under the system temp folder.
    staging_dir: str | None = None
    # Client settings for S3 roots (endpoint, region, credentials); default: boto3's own chain,
    # which honours AWS_ENDPOINT_URL, AWS_REGION and the pod's or task's role.
    s3: S3Resource | None = None

    @property
    def root_path(self) -> Path:
        """Local folder of the output areas: `root`, or its staging mirror when on S3."""
        return self._local_base("deidentified")

    def incoming(self, partition: str) -> Path:
        return self._local_base("incoming") / "incoming" / partition

    def deidentified(self, partition: str) -> Path:
        return self._local_base("deidentified") / "deidentified" / partition

    def work(self, partition: str) -> Path:
        """Mapping files, audit and quarantine of a partition: they re-identify, so they live
        outside every output tree."""
        return self._local_base("work") / "work" / partition

    def table_path(self, table: str, partition: str) -> Path:
        return self._local_base("tables") / "tables" / table / f"{partition}.parquet"

    def write_table(self, table: str, partition: str, frame: pd.DataFrame) -> Path:
        path, _ = self.write_table_with(table, partition,
                                        lambda tmp: frame.to_parquet(tmp, index=False))
        return path

    def write_table_with(self, table: str, partition: str,
                         write: Callable[[Path], Written]) -> tuple[Path, Written]:
        """A table that `write(tmp)` writes as Parquet itself (streamed, never a whole frame),
        put in place atomically and published; its path and what `write` returned."""
        path = self.table_path(table, partition)
        written = write_atomically(path, write)
        self.publish(path)
        return path, written

    def read_table(self, table: str, partition: str, columns: list[str] | None = None,
                   filters: list[list[tuple]] | None = None) -> pd.DataFrame:
        """The table, or its `columns` and the rows that pass pyarrow `filters`, read as such
        (the rest never decoded)."""
        return pd.read_parquet(self.stage(self.table_path(table, partition)), columns=columns,
                               filters=filters)

    def stage_incoming(self, partition: str) -> Path:
        """The partition's drop folder on local disk (downloaded first from S3). It does not
        exist when nothing was dropped for the partition."""
        return self.stage(self.incoming(partition))

    def stage(self, path: Path) -> Path:
        """Make a lake path (file or folder) on local disk match its S3 copy, and return it.
        Files already staged and unchanged are not downloaded again; files gone from S3 go."""
        remote = self._remote(path)
        if remote:
            self._store().download_tree(remote, path)
        return path

    def publish(self, path: Path) -> str:
        """Put a file or folder an asset wrote to its S3 location (objects under a published
        folder that it no longer holds are removed) and return where it is now."""
        remote = self._remote(path)
        if remote:
            self._store().upload_tree(path, remote)
        return remote or str(path)

    def location(self, path: Path) -> str:
        """Where a lake path is kept: its `s3://` URL or the local path itself."""
        return self._remote(path) or str(path)

    def incoming_days(self) -> list[str]:
        """Names of the day folders (or prefixes) under `incoming/`, sorted."""
        root = self.incoming_root or self.root
        if is_object_url(root):
            return self._store().list_folders(_join(root, "incoming"))
        base = Path(root) / "incoming"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def has_incoming_files(self, partition: str) -> bool:
        """Whether the day's drop holds any file that is not hidden (partial uploads are)."""
        remote = self._remote(self.incoming(partition))
        if remote:
            return self._store().has_files(remote)
        folder = self.incoming(partition)
        return any(p.is_file() and not is_hidden(p.relative_to(folder).as_posix())
                   for p in folder.rglob("*"))

    def _area_root(self, area: str) -> str:
        if area == "incoming":
            return self.incoming_root or self.root
        if area in PRIVATE_AREAS:
            return self.private_root or self.root
        return self.root

    def _staging(self) -> Path:
        if self.staging_dir:
            return Path(self.staging_dir)
        roots = "|".join(str(r) for r in (self.root, self.incoming_root, self.private_root))
        digest = hashlib.sha256(roots.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / "deid_pipeline_staging" / digest

    def _local_base(self, area: str) -> Path:
        root = self._area_root(area)
        if not is_object_url(root):
            return Path(root)
        staging = self._staging()
        # Owner-only: the mirror holds copies of drops and mapping files.
        staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        return staging

    def _remote(self, path: Path) -> str | None:
        """The S3 URL of a staged path, or None for a path kept on local disk."""
        try:
            relative = Path(path).relative_to(self._staging())
        except ValueError:
            return None
        root = self._area_root(relative.parts[0]) if relative.parts else self.root
        return _join(root, relative.as_posix()) if is_object_url(root) else None

    def _store(self) -> ObjectStore:
        return ObjectStore((self.s3 or S3Resource()).get_client())


def _join(url: str, relative: str) -> str:
    return f"{url.rstrip('/')}/{relative}"


class PseudonymKey(ConfigurableResource):
    """The key of every pseudonym, read from `DEID_SECRET` or `DEID_SECRET_FILE` when a step
    runs, so it never sits in run config, the event log or code. In production (`DEID_ENV`)
    the code location refuses to load without a usable key, rather than fail the first run of
    the night."""

    def model_post_init(self, context: object) -> None:
        super().model_post_init(context)
        if is_production():
            Pseudonymizer.from_environment()  # raises MissingSecretError, naming what is wrong

    def pseudonymizer(self, policy: Policy) -> Pseudonymizer:
        return Pseudonymizer.from_environment(min_shift_days=policy.shift_min_days,
                                              max_shift_days=policy.shift_max_days)
