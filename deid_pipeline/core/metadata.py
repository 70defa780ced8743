"""Flatten a DICOM dataset into one row per element, sequences and private blocks included."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from deid_pipeline.core.quiet import file_messages_muted

# Binary VRs hold pixel data, lookup tables and vendor blobs: the table records their length,
# not their bytes.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
METADATA_COLUMNS = (
    "file", "path", "tag", "keyword", "vr", "vm", "value", "length", "private_creator", "depth",
)
INTEGER_COLUMNS = frozenset({"vm", "length", "depth"})
METADATA_SCHEMA = pa.schema([(name, pa.int64() if name in INTEGER_COLUMNS else pa.string())
                           for name in METADATA_COLUMNS])


@dataclass(frozen=True)
class ElementRow:
    file: str
    path: str  # e.g. "(0008,1140)[0].(0008,1155)": where the element sits among sequence items
    tag: str  # "(gggg,eeee)", upper-case hex
    keyword: str
    vr: str
    vm: int
    value: str | None
    length: int
    private_creator: str | None
    depth: int


def format_tag(tag: BaseTag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def value_as_text(elem: DataElement) -> str | None:
    """The element's value as DICOM would print it (multi-values joined by a backslash)."""
    if elem.VR in BINARY_VRS or elem.VR == "SQ" or elem.value is None:
        return None
    value = elem.value
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return None
    return str(value)


def value_length(elem: DataElement) -> int:
    value = elem.value
    if value is None:
        return 0
    if elem.VR == "SQ":
        return len(value)
    if isinstance(value, bytes | str):
        return len(value)
    return len(value_as_text(elem) or "")


def private_creator_of(ds: Dataset, elem: DataElement) -> str | None:
    tag = elem.tag
    if not tag.is_private or tag.is_private_creator:
        return None
    creator_tag = BaseTag((tag.group << 16) | (tag.element >> 8))
    creator = ds.get(creator_tag)
    return str(creator.value) if creator is not None else None


def iter_element_rows(ds: Dataset, file: str, prefix: str = "", depth: int = 0) -> Iterator[ElementRow]:
    """Every element of `ds` (file meta first, then the dataset), depth first through sequences."""
    if depth == 0 and getattr(ds, "file_meta", None) is not None:
        yield from iter_element_rows(ds.file_meta, file, prefix, depth)
    for elem in ds:
        path = f"{prefix}{format_tag(elem.tag)}"
        yield ElementRow(
            file=file,
            path=path,
            tag=format_tag(elem.tag),
            keyword=elem.keyword or "",
            vr=elem.VR,
            vm=elem.VM,
            value=value_as_text(elem),
            length=value_length(elem),
            private_creator=private_creator_of(ds, elem),
            depth=depth,
        )
        if elem.VR == "SQ" and elem.value is not None:
            for index, item in enumerate(elem.value):
                yield from iter_element_rows(item, file, f"{path}[{index}].", depth + 1)


def read_element_rows(path: Path, file: str) -> list[ElementRow]:
    """All element rows of one file (pixel data excluded), parsed in full so that a value that
    breaks the parser surfaces here, per file, rather than later."""
    with file_messages_muted():
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        return list(iter_element_rows(ds, file))


def metadata_table(rows: Iterable[ElementRow]) -> pa.Table:
    """The rows as an Arrow table of METADATA_SCHEMA: what worker processes hand back (compact,
    cheap to pass between processes) and what goes to Parquet as it comes. Gathered column by
    column, never as a list of row objects or dicts: a night's files have millions of elements."""
    columns: dict[str, list] = {name: [] for name in METADATA_COLUMNS}
    appends = [(name, columns[name].append) for name in METADATA_COLUMNS]
    for row in rows:
        for name, append in appends:
            append(getattr(row, name))
    return pa.table(columns, schema=METADATA_SCHEMA)


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow metadata table as a pandas frame whose text columns hold Python strings and None
    (not pandas' string dtype, whose missing value is NaN), as the checks compare them."""
    columns = {name: table.column(name).to_numpy(zero_copy_only=False)
               for name in METADATA_COLUMNS}
    return pd.DataFrame({name: values if name in INTEGER_COLUMNS
                         else pd.Series(values, dtype=object)
                         for name, values in columns.items()})


def metadata_frame(rows: Iterable[ElementRow]) -> pd.DataFrame:
    return table_to_frame(metadata_table(rows))
