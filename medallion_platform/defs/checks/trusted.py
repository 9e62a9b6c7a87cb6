"""Asset checks derived from the contract, evaluated with DuckDB over what the run just wrote.

Every check here guards data correctness, so all are blocking: a failure stops downstream
refined assets in the same run.
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg
import duckdb
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.contracts.model import TOMBSTONE_COLUMN
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.sql import ident, idents, literal

__all__ = ["contract_check_results", "contract_check_specs"]

CHECKS = {
    "reconciliation": "raw rows = inserted + updated + in-batch duplicates + re-deliveries + quarantined",
    "key_unique": "the primary key is unique",
    "required_present": "required columns are never null",
    "values_in_range": "numeric columns are within min/max, dates and timestamps within the valid years",
    "values_allowed": "columns with allowed values hold only those",
    "values_match_pattern": "columns with a regex match it",
}


def contract_check_specs(contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The blocking checks of a trusted table."""
    return [dg.AssetCheckSpec(name, asset=key, description=text, blocking=True) for name, text in CHECKS.items()]


def _violations(contract: Contract) -> dict[str, str]:
    """SQL counting the violating rows of each check (over a relation called `t`)."""
    ranges, allowed, patterns = [], [], []
    for c in contract.columns:
        name = ident(c.name)
        if c.min is not None:
            ranges.append(f"{name} < {literal(c.min)}")
        if c.max is not None:
            ranges.append(f"{name} > {literal(c.max)}")
        years = contract.years(c)
        if years is not None:
            ranges.append(f"year({name}) NOT BETWEEN {literal(years[0])} AND {literal(years[1])}")
        if c.allowed is not None:
            allowed.append(f"{name} NOT IN ({', '.join(literal(v) for v in c.allowed)})")
        if c.regex is not None:
            patterns.append(f"NOT regexp_full_match({name}, {literal(c.regex)})")
    required = [f"{ident(c.name)} IS NULL" for c in contract.columns if c.required]

    # a hard delete's tombstone keeps only the key, the operation and the sequence: its other columns are empty
    live = f"NOT {ident(TOMBSTONE_COLUMN)} AND " if contract.changes and contract.changes.deletes == "hard" else ""

    def count(conditions: list[str]) -> str:
        return f"SELECT count(*) FROM t WHERE {live}({' OR '.join(conditions)})" if conditions else "SELECT 0"

    keys = idents(contract.primary_key)
    return {
        "key_unique": f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM t GROUP BY {keys})",
        "required_present": count(required),
        "values_in_range": count(ranges),
        "values_allowed": count(allowed),
        "values_match_pattern": count(patterns),
    }


def contract_check_results(
    table: DeltaTableIO,
    contract: Contract,
    key: dg.AssetKey,
    *,
    reconciled: bool,
    reconciliation: dict,
    partitions: Sequence[str] | None = None,
) -> list[dg.AssetCheckResult]:
    """Evaluates every check on the table (only the touched partitions when it is partitioned)."""
    results = [
        dg.AssetCheckResult(
            asset_key=key,
            check_name="reconciliation",
            passed=reconciled,
            metadata={k: v for k, v in reconciliation.items() if isinstance(v, int | bool)},
        )
    ]
    scope = None
    if contract.partition is not None and partitions is not None:
        scope = ds.field(contract.partition.column).isin([dt.date.fromisoformat(p) for p in partitions])
    dataset = table.duckdb_dataset(scope)
    con = duckdb.connect()
    try:
        if dataset is not None:
            con.register("t", dataset)
        for name, sql in _violations(contract).items():
            bad = 0 if dataset is None else int(con.execute(sql).fetchall()[0][0])
            results.append(
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name=name,
                    passed=bad == 0,
                    metadata={"violations": bad, "scope": ",".join(partitions) if partitions else "table"},
                )
            )
    finally:
        con.close()
    return results
