"""The metadata table of many files at once: every file's elements flattened (core.metadata),
and a count of the files that could not be parsed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deid_pipeline.core.metadata import metadata_frame, read_element_rows


@dataclass(frozen=True)
class TreeMetadata:
    frame: pd.DataFrame  # core.metadata.METADATA_COLUMNS, `file` the path relative to the folder
    unparsable: int


def tree_metadata(folder: Path, relpaths: Iterable[str]) -> TreeMetadata:
    """The element rows of each file `folder / relpath`."""
    rows, unparsable = [], 0
    for relpath in relpaths:
        try:
            rows.extend(read_element_rows(folder / relpath, relpath))
        # The deid stage quarantines such a file with its reason; here it is only counted.
        except Exception:  # noqa: BLE001
            unparsable += 1
    return TreeMetadata(metadata_frame(rows), unparsable)
