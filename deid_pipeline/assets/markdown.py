"""Materialization metadata a person reads in the UI."""

import base64
from collections.abc import Mapping

from dagster import MetadataValue


def counts_table(counts: Mapping[str, int], key: str, unit: str) -> MetadataValue:
    """A two-column markdown table, sorted by key: `| key | unit |`."""
    rows = "\n".join(f"| {k} | {n} |" for k, n in sorted(counts.items()))
    return MetadataValue.md(f"| {key} | {unit} |\n|---|---|\n{rows}")


def inline_png(png: bytes, alt: str) -> str:
    """A markdown image that carries its PNG in the text: the UI shows it with nothing hosted
    anywhere else."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
