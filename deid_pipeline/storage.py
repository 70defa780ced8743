"""Mirror lake areas between local disk and S3, one whole object per file.

An S3 object is visible only once its upload is complete (a single PUT, or a multipart upload
once it is completed), so a reader never sees half a file; downloads go to a temporary name and
are renamed into place, so a local reader never does either.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from deid_pipeline.core.atomic import write_atomically

S3_SCHEME = "s3://"
# delete_objects takes at most this many keys a call.
DELETE_BATCH = 1000


def is_object_url(root: str) -> bool:
    return root.startswith(S3_SCHEME)


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> (`bucket`, `some/prefix`)."""
    bucket, _, prefix = url.removeprefix(S3_SCHEME).partition("/")
    return bucket, prefix.strip("/")


def is_hidden(relative: str) -> bool:
    """Dot-names are partial uploads, sync temporaries and our own temporary files: never data."""
    return any(part.startswith(".") for part in PurePosixPath(relative).parts)


class ObjectStore:
    """The few S3 operations the lake needs, on a boto3 S3 client."""

    def __init__(self, client: Any):
        self.client = client

    def objects(self, url: str) -> Iterator[tuple[str, dict]]:
        """(path relative to `url`, listing entry) of every object under `url` taken as a
        folder; folder markers (keys ending in `/`) are not objects of a tree."""
        bucket, prefix = split_url(url)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
        for page in pages:
            for entry in page.get("Contents", []):
                relative = entry["Key"][len(prefix) + 1 if prefix else 0:]
                if relative and not relative.endswith("/"):
                    yield relative, entry

    def list_folders(self, url: str) -> list[str]:
        """Names of the sub-prefixes directly under `url`, sorted."""
        bucket, prefix = split_url(url)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", Delimiter="/")
        return sorted(common["Prefix"].rstrip("/").rpartition("/")[2]
                      for page in pages for common in page.get("CommonPrefixes", []))

    def has_files(self, url: str) -> bool:
        return any(not is_hidden(relative) for relative, _ in self.objects(url))

    def download_tree(self, url: str, local: Path) -> None:
        """Make `local` hold exactly the objects under `url` (or, when `url` names one object,
        be that object's file); hidden objects (partial uploads) are not data and stay behind.
        Unchanged files (same size and modification time as their object) are kept; when
        nothing is at `url`, `local` is removed."""
        bucket, key = split_url(url)
        wanted = set()
        for relative, entry in self.objects(url):
            if is_hidden(relative):
                continue
            # A key with `..` would write outside the staging folder.
            if ".." in PurePosixPath(relative).parts:
                raise ValueError(f"an object key under {url} leaves its folder")
            wanted.add(relative)
            self._download(bucket, f"{key}/{relative}" if key else relative, entry,
                           local / relative)
        if wanted:
            # Hidden files are left alone: another step may be staging into the same folder.
            for path in list(local.rglob("*")):
                relative = path.relative_to(local).as_posix()
                if path.is_file() and not is_hidden(relative) and relative not in wanted:
                    path.unlink()
        elif single := self._object(bucket, key):
            self._download(bucket, key, single, local)
        elif local.is_dir():
            shutil.rmtree(local)
        else:
            local.unlink(missing_ok=True)

    def upload_tree(self, local: Path, url: str) -> None:
        """Make the objects under `url` match the file or folder `local`: every file becomes
        one object (hidden temporaries are skipped) and objects it no longer has are deleted."""
        bucket, key = split_url(url)
        if local.is_file():
            self.client.upload_file(str(local), bucket, key)
            return
        uploaded = set()
        for path in sorted(local.rglob("*")) if local.is_dir() else []:
            relative = path.relative_to(local).as_posix()
            if path.is_file() and not is_hidden(relative):
                self.client.upload_file(str(path), bucket, f"{key}/{relative}")
                uploaded.add(relative)
        stale = [entry["Key"] for relative, entry in self.objects(url) if relative not in uploaded]
        for start in range(0, len(stale), DELETE_BATCH):
            self.client.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": k} for k in stale[start:start + DELETE_BATCH]],
                "Quiet": True})

    def _object(self, bucket: str, key: str) -> dict | None:
        """The listing entry of the object named `key`, if there is one. (A listing, not a HEAD:
        without list rights on a prefix, S3 answers a HEAD of a missing key with 403.)"""
        if not key:
            return None
        listing = self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        entries = [e for e in listing.get("Contents", []) if e["Key"] == key]
        return entries[0] if entries else None

    def _download(self, bucket: str, key: str, entry: dict, target: Path) -> None:
        stamp = entry["LastModified"].timestamp()
        if (target.is_file() and target.stat().st_size == entry["Size"]
                and int(target.stat().st_mtime) == int(stamp)):
            return
        write_atomically(target, lambda tmp: self.client.download_file(bucket, key, str(tmp)))
        # The object's own time marks the staged copy, so a later re-upload is noticed.
        os.utime(target, (stamp, stamp))
