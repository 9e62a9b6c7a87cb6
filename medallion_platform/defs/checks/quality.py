"""Warning-level anomaly checks of a source's quality over time (`zones/quality.py`): the newest batch's
volume and each rule's quarantine rate against a robust baseline of the batches before it.

They warn and never block: a rate leaving its recent range is a question for a person, not a wrong row.
"""

import dagster as dg

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.quality import contract_rules, quality_history, quality_verdicts

__all__ = ["quality_check_results", "quality_check_specs"]


def quality_check_specs(contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """`volume` and one `quarantine_rate_<rule>` per rule the contract can fail."""
    specs = [
        dg.AssetCheckSpec(
            "volume", asset=key, description="the batch's landed rows are within the recent batches' range"
        )
    ]
    specs += [
        dg.AssetCheckSpec(
            f"quarantine_rate_{rule}",
            asset=key,
            description=f"the share of rows quarantined by rule {rule} is within the recent batches' range",
        )
        for rule in contract_rules(contract)
    ]
    return specs


def quality_check_results(
    lake: Lakehouse, contract: Contract, key: dg.AssetKey, engine: Engine | None = None
) -> list[dg.AssetCheckResult]:
    """One WARN-severity result per check over the quality table as it stands (the newest batch last; read by
    the cluster's Spark on a cluster)."""
    settings = lake.settings
    verdicts = quality_verdicts(
        quality_history(lake.quality(contract.name), engine),
        contract_rules(contract),
        window=settings.quality_batches,
        width=settings.quality_width,
    )
    if not verdicts:  # no batch recorded yet: every check passes, saying so (a selected check always reports)
        return [
            dg.AssetCheckResult(
                asset_key=key,
                check_name=spec.name,
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"verdict": "no batches recorded yet"},
            )
            for spec in quality_check_specs(contract, key)
        ]
    results = []
    for v in verdicts:
        metadata: dict[str, float | int | str] = {"value": v.value, "baseline_batches": v.baseline}
        if v.median is not None and v.low is not None and v.high is not None:
            metadata |= {"median": v.median, "low": v.low, "high": v.high}
        else:
            metadata["verdict"] = "baseline too short"
        results.append(
            dg.AssetCheckResult(
                asset_key=key,
                check_name=v.name,
                passed=not v.anomalous,
                severity=dg.AssetCheckSeverity.WARN,
                metadata=metadata,
            )
        )
    return results
