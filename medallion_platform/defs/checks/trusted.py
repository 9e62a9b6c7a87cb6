"""Asset checks derived from the contract, evaluated over what the run just wrote: with DuckDB over the table's
files, or on a cluster with its Spark over the table read by name.

Every check here guards data correctness, so all are blocking: a failure stops downstream
refined assets in the same run.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.contracts.model import TOMBSTONE_COLUMN
from medallion_platform.engine.base import Engine
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.sql import ident, literal, spark_ident, spark_literal
from medallion_platform.write.table_state import cluster_of, has_table, table_at

if TYPE_CHECKING:
    from medallion_platform.engine.databricks import DatabricksEngine

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


def _violations(contract: Contract, *, spark: bool = False) -> dict[str, str]:
    """SQL counting the violating rows of each check (over a relation called `t`), in DuckDB's dialect or, with
    `spark`, in Spark's (back-quoted names, backslash-escaped text, a regex anchored for RLIKE)."""
    quote, lit = (spark_ident, spark_literal) if spark else (ident, literal)
    ranges, allowed, patterns = [], [], []
    for c in contract.columns:
        name = quote(c.name)
        if c.min is not None:
            ranges.append(f"{name} < {lit(c.min)}")
        if c.max is not None:
            ranges.append(f"{name} > {lit(c.max)}")
        years = contract.years(c)
        if years is not None:
            ranges.append(f"year({name}) NOT BETWEEN {lit(years[0])} AND {lit(years[1])}")
        if c.allowed is not None:
            allowed.append(f"{name} NOT IN ({', '.join(lit(v) for v in c.allowed)})")
        if c.regex is not None:
            if spark:
                patterns.append(f"NOT {name} RLIKE {lit('^(?:' + c.regex + ')$')}")
            else:
                patterns.append(f"NOT regexp_full_match({name}, {lit(c.regex)})")
    required = [f"{quote(c.name)} IS NULL" for c in contract.columns if c.required]

    # a hard delete's tombstone keeps only the key, the operation and the sequence: its other columns are empty
    live = f"NOT {quote(TOMBSTONE_COLUMN)} AND " if contract.changes and contract.changes.deletes == "hard" else ""

    def count(conditions: list[str]) -> str:
        return f"SELECT count(*) FROM t WHERE {live}({' OR '.join(conditions)})" if conditions else "SELECT 0"

    keys = ", ".join(map(quote, contract.primary_key))
    # rows beyond one per key; on Spark one flat aggregate over the key as one row value with a constant (a lone
    # column's NULL would not be counted), as Sail's planner refuses a grouped subquery's nullability
    duplicates = f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM t GROUP BY {keys})"
    if spark:
        duplicates = f"SELECT count(*) - count(DISTINCT ({keys}, 0)) FROM t"
    return {
        "key_unique": duplicates,
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
    engine: Engine | None = None,
) -> list[dg.AssetCheckResult]:
    """Evaluates every check on the table (only the touched partitions when it is partitioned): on a cluster
    (`engine`) as Spark SQL over the table read by name, elsewhere on DuckDB over its Delta files."""
    results = [
        dg.AssetCheckResult(
            asset_key=key,
            check_name="reconciliation",
            passed=reconciled,
            metadata={k: v for k, v in reconciliation.items() if isinstance(v, int | bool)},
        )
    ]
    scope_text = ",".join(partitions) if partitions else "table"
    dates = None
    if contract.partition is not None and partitions is not None:
        dates = [dt.date.fromisoformat(p) for p in partitions]
    cluster = cluster_of(engine)
    if cluster is not None:
        return results + _on_spark(cluster, table, contract, key, dates, scope_text)
    scope = None if dates is None or contract.partition is None else ds.field(contract.partition.column).isin(dates)
    dataset = table.duckdb_dataset(scope)
    con = duckdb.connect()
    try:
        if dataset is not None:
            con.register("t", dataset)
        count = None if dataset is None else lambda sql: con.execute(sql).fetchall()[0][0]
        return results + _verdicts(key, _violations(contract), count, scope_text)
    finally:
        con.close()


def _on_spark(
    engine: "DatabricksEngine",
    table: DeltaTableIO,
    contract: Contract,
    key: dg.AssetKey,
    dates: Sequence[dt.date] | None,
    scope_text: str,
) -> list[dg.AssetCheckResult]:
    """The checks as Spark SQL over a temporary view of the table read by name (pruned to `dates`)."""
    if not has_table(engine, table):
        return _verdicts(key, _violations(contract, spark=True), None, scope_text)
    column = contract.partition.column if contract.partition is not None and dates is not None else None
    with engine.sql_over({"t": table_at(engine, table, None, column, dates)}) as count:
        return _verdicts(key, _violations(contract, spark=True), count, scope_text)


def _verdicts(
    key: dg.AssetKey, queries: dict[str, str], count: Callable[[str], object] | None, scope_text: str
) -> list[dg.AssetCheckResult]:
    """Each check's result from its query's count of violating rows (`count` None: no table yet)."""
    results = []
    for name, sql in queries.items():
        bad = 0 if count is None else int(count(sql))  # type: ignore[call-overload]
        results.append(
            dg.AssetCheckResult(
                asset_key=key,
                check_name=name,
                passed=bad == 0,
                metadata={"violations": bad, "scope": scope_text},
            )
        )
    return results
