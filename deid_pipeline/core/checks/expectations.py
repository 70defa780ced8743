"""Expectation suites over pandas frames, evaluated with great-expectations in an ephemeral
context.

A suite names its expectations by class and arguments; the great-expectations objects are built
only when `evaluate` runs, since importing the library takes seconds. Outcomes carry counts and
the names of the expectations that failed, never a value: the frames and the value sets of some
expectations hold original identifiers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
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
    return evaluate_batches([suites])


def evaluate_batches(batches: Iterable[Sequence[Suite]]) -> list[SuiteOutcome]:
    """Suites made batch by batch (the same suites over a part of the rows each time), validated
    as they come in one ephemeral context, each suite's outcomes merged over the batches: exact
    for expectations that judge rows one by one, and only a batch's frames are held at once."""
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
    outcomes: dict[str, list[SuiteOutcome]] = {}
    for suites in batches:
        for suite in suites:
            expectations = [getattr(gx.expectations, e.kind)(**e.arguments)
                            for e in suite.expectations]
            result = frames.get_batch(batch_parameters={"dataframe": suite.frame}).validate(
                gx.ExpectationSuite(name=suite.name, expectations=expectations),
                result_format=COUNTS_ONLY)
            outcomes.setdefault(suite.name, []).append(_outcome(suite, result))
    return [_merged(parts) for parts in outcomes.values()]


def _outcome(suite: Suite, result: Any) -> SuiteOutcome:
    passed, failed, unexpected = [], [], 0
    for expectation in result.results:
        label = _label(expectation.expectation_config)
        if expectation.success:
            passed.append(label)
        else:
            failed.append(label)
            # An expectation that raised has no count: its rows are not judged.
            unexpected += int((expectation.result or {}).get("unexpected_count") or 0)
    return SuiteOutcome(suite.name, len(suite.frame), tuple(passed), tuple(failed), unexpected,
                        suite.note)


def _merged(parts: Sequence[SuiteOutcome]) -> SuiteOutcome:
    """One suite's outcomes over several batches: an expectation passes if it passed in each."""
    failed = tuple(dict.fromkeys(label for part in parts for label in part.failed))
    passed = tuple(label for label in dict.fromkeys(label for part in parts
                                                    for label in part.passed)
                   if label not in failed)
    return SuiteOutcome(parts[0].name, sum(part.rows for part in parts), passed, failed,
                        sum(part.unexpected_rows for part in parts), parts[0].note)


def _label(config: Any) -> str:
    """The expectation's type and the columns it reads (its value sets can hold PHI)."""
    columns = [str(config.kwargs[key]) for key in ("column", "column_A", "column_B")
               if config.kwargs.get(key) is not None]
    return f"{config.type}({', '.join(columns)})"
