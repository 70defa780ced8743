"""Materialization metadata a person reads in the UI."""

from collections.abc import Mapping

from dagster import MetadataValue


def counts_table(counts: Mapping[str, int], key: str, unit: str) -> MetadataValue:
    """A two-column markdown table, sorted by key: `| key | unit |`."""
    rows = "\n".join(f"| {k} | {n} |" for k, n in sorted(counts.items()))
    return MetadataValue.md(f"| {key} | {unit} |\n|---|---|\n{rows}")
