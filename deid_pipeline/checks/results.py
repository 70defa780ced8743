"""A suite's outcome as an asset check result: counts and expectation names, never values."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from deid_pipeline.core.checks.expectations import SuiteOutcome
from deid_pipeline.core.checks.suites import Check


def check_spec(check: Check, asset: AssetKey) -> AssetCheckSpec:
    """Blocking where a failure means PHI could leave: the stages after the asset wait for it."""
    return AssetCheckSpec(check.name, asset=asset, description=check.description,
                          blocking=check.guards_phi)


def check_result(check: Check, outcome: SuiteOutcome, asset: AssetKey) -> AssetCheckResult:
    metadata = {
        "rows": outcome.rows,
        "expectations_passed": len(outcome.passed),
        "expectations_failed": len(outcome.failed),
        "unexpected_rows": outcome.unexpected_rows,
        "failed_expectations": MetadataValue.json(list(outcome.failed)),
    }
    if outcome.note:
        metadata["note"] = outcome.note
    return AssetCheckResult(
        asset_key=asset, check_name=check.name, passed=outcome.success, metadata=metadata,
        severity=AssetCheckSeverity.ERROR if check.guards_phi else AssetCheckSeverity.WARN)
