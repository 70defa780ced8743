"""Expectation suites over pandas frames, evaluated with great-expectations in an ephemeral
context.

A suite names its expectations by class and arguments; the great-expectations objects are built
only when `evaluate` runs, since importing the library takes seconds. Outcomes carry counts and
the names of the expectations that failed, never a value: the frames and the value sets of some
expectations hold original identifiers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

# Counts of unexpected rows, without the sample of unexpected values a result carries by default.
COUNTS_ONLY = {"result_format": "BASIC", "partial_unexpected_count": 0}


@dataclass(frozen=True)
class Expectation:
    kind: str  # a class of great_expectations.expectations, e.g. "ExpectColumnValuesToNotBeNull"
    arguments: Mapping[str, Any]


def not_null(column: str) -> Expectation:
    return Expectation("ExpectColumnValuesToNotBeNull", {"column": column})


def unique(column: str) -> Expectation:
    return Expectation("ExpectColumnValuesToBeUnique", {"column": column})


def matches(column: str, regex: str) -> Expectation:
    return Expectation("ExpectColumnValuesToMatchRegex", {"column": column, "regex": regex})


def in_set(column: str, values: Collection[str]) -> Expectation:
    return Expectation("ExpectColumnValuesToBeInSet",
                       {"column": column, "value_set": sorted(values)})


def not_in_set(column: str, values: Collection[str]) -> Expectation:
    return Expectation("ExpectColumnValuesToNotBeInSet",
                       {"column": column, "value_set": sorted(values)})


def at_least(column: str, minimum: int) -> Expectation:
    return Expectation("ExpectColumnValuesToBeBetween", {"column": column, "min_value": minimum})


def lengths_between(column: str, minimum: int, maximum: int) -> Expectation:
    return Expectation("ExpectColumnValueLengthsToBeBetween",
                       {"column": column, "min_value": minimum, "max_value": maximum})


@dataclass(frozen=True)
class Suite:
    name: str
    frame: pd.DataFrame
    expectations: tuple[Expectation, ...]
    note: str = ""  # why a suite has no expectations (the policy allows what it would check)


@dataclass(frozen=True)
class SuiteOutcome:
    name: str
    rows: int
    passed: tuple[str, ...]  # expectation labels, e.g. "expect_column_values_to_not_be_null(x)"
    failed: tuple[str, ...]
    unexpected_rows: int  # summed over the failed expectations
    note: str = ""

    @property
    def success(self) -> bool:
        return not self.failed


def evaluate(suites: Sequence[Suite]) -> list[SuiteOutcome]:
    """Each suite validated against its frame, in one ephemeral context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(), analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False)))
    frames = (context.data_sources.add_pandas("metadata").add_dataframe_asset("frame")
              .add_batch_definition_whole_dataframe("whole"))
    outcomes = []
    for suite in suites:
        expectations = [getattr(gx.expectations, e.kind)(**e.arguments) for e in suite.expectations]
        result = frames.get_batch(batch_parameters={"dataframe": suite.frame}).validate(
            gx.ExpectationSuite(name=suite.name, expectations=expectations),
            result_format=COUNTS_ONLY)
        passed, failed, unexpected = [], [], 0
        for expectation in result.results:
            label = _label(expectation.expectation_config)
            if expectation.success:
                passed.append(label)
            else:
                failed.append(label)
                # An expectation that raised has no count: its rows are not judged.
                unexpected += int((expectation.result or {}).get("unexpected_count") or 0)
        outcomes.append(SuiteOutcome(suite.name, len(suite.frame), tuple(passed), tuple(failed),
                                     unexpected, suite.note))
    return outcomes


def _label(config: Any) -> str:
    """The expectation's type and the columns it reads (its value sets can hold PHI)."""
    columns = [str(config.kwargs[key]) for key in ("column", "column_A", "column_B")
               if config.kwargs.get(key) is not None]
    return f"{config.type}({', '.join(columns)})"
