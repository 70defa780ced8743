"""The metadata table of many files at once: every file's elements flattened (core.metadata),
and a count of the files that could not be parsed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deid_pipeline.core.metadata import ElementRow, metadata_frame, read_element_rows


@dataclass(frozen=True)
class TreeMetadata:
    frame: pd.DataFrame  # core.metadata.METADATA_COLUMNS, `file` the path relative to the folder
    unparsable: int


def tree_metadata(folder: Path, relpaths: Iterable[str]) -> TreeMetadata:
    """The element rows of each file `folder / relpath`, fed file by file into the table."""
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

    frame = metadata_frame(rows())
    return TreeMetadata(frame, unparsable)
