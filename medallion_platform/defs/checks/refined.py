"""Asset checks of the refined tables, evaluated with DuckDB over what the run just wrote.

Each refined table declares its key, its amounts and the figures it must agree on with its fact input
(`RefinedTable.key`, `.non_negative`, `.tallies`); the checks read the dates the run built (the whole
table when unpartitioned) and the fact's rows of the same event dates, at the fact version they were built
from. Like the trusted checks they are blocking: a failure fails the run (red in the UI, and the automation
retries the dates).
"""

import datetime as dt
import json
from collections.abc import Sequence

import dagster as dg
import duckdb
import pyarrow.dataset as ds

from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.refined.base import built_from
from medallion_platform.zones.refined.model import PARTITION, RefinedTable

__all__ = ["CHECKS", "refined_check_results", "refined_check_specs"]

CHECKS = {
    "amounts_non_negative": "amount and count columns are never negative",
    "key_unique": "one row per key (per event date when partitioned)",
    "reconciles_with_fact": "row counts and sums agree with the fact input's rows for the dates built",
}


def refined_check_specs(table: RefinedTable, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The checks of a refined table (only those its declaration gives something to check)."""
    declared = {
        "amounts_non_negative": table.non_negative,
        "key_unique": table.key,
        "reconciles_with_fact": table.tallies,
    }
    return [
        dg.AssetCheckSpec(name, asset=key, description=text, blocking=True)
        for name, text in CHECKS.items()
        if declared[name]
    ]


def _scope(dates: Sequence[str] | None) -> ds.Expression | None:
    return None if dates is None else ds.field(PARTITION).isin([dt.date.fromisoformat(d) for d in dates])


def refined_check_results(
    lake: Lakehouse, table: RefinedTable, key: dg.AssetKey, dates: Sequence[str] | None
) -> list[dg.AssetCheckResult]:
    """Evaluates the table's checks over `dates` (None: the whole table, and every fact row).

    The fact is read at the version the table's rows were built from (`built_from`): a trusted commit
    landing between the refresh and its checks (a sensor's run racing a backfill) is the next refresh's,
    not a mismatch."""
    scope = _scope(dates if table.partitioned else None)
    refined = lake.refined(table.name).duckdb_dataset(scope)
    version = built_from(lake, table)
    fact = lake.trusted(table.fact).duckdb_dataset(scope, version=version)
    described = {
        "scope": ",".join(dates) if dates and table.partitioned else "table",
        "fact_version": "current" if version is None else version,
    }
    con = duckdb.connect()
    try:
        con.register("r", refined if refined is not None else table.schema.empty_table())
        results = []
        if table.non_negative:
            negative = " OR ".join(f'"{c}" < 0' for c in table.non_negative)
            bad = _scalar(con, f"SELECT count(*) FROM r WHERE {negative}")
            results.append(_result(key, "amounts_non_negative", bad == 0, {"violations": bad, **described}))
        if table.key:
            columns = ", ".join(f'"{c}"' for c in table.key)
            sql = f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM r GROUP BY {columns})"
            bad = _scalar(con, sql)
            results.append(_result(key, "key_unique", bad == 0, {"duplicate_rows": bad, **described}))
        if table.tallies:
            if fact is not None:
                con.register("f", fact)
            results.append(_reconciliation(con, table, key, fact is not None, described))
    finally:
        con.close()
    return results


def _reconciliation(
    con: duckdb.DuckDBPyConnection, table: RefinedTable, key: dg.AssetKey, has_fact: bool, described: dict
) -> dg.AssetCheckResult:
    figures: dict[str, dict[str, str]] = {}
    for tally in table.tallies:
        refined = _scalar(con, f"SELECT coalesce(({tally.refined}), 0) FROM r")
        fact = _scalar(con, f"SELECT coalesce(({tally.fact}), 0) FROM f") if has_fact else 0
        figures[tally.name] = {"refined": str(refined), table.fact: str(fact)}
    mismatched = [name for name, pair in figures.items() if pair["refined"] != pair[table.fact]]
    metadata = {"figures": dg.JsonMetadataValue(figures), "mismatched": ",".join(mismatched) or "none", **described}
    return _result(key, "reconciles_with_fact", not mismatched, metadata)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    rows = con.execute(sql).fetchall()  # fetched to the end: DuckDB refuses new work on an unfinished result
    value = rows[0][0] if rows else 0
    return int(value) if isinstance(value, int) else value


def _result(key: dg.AssetKey, name: str, passed: bool, metadata: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={k: v if not isinstance(v, list | dict) else json.dumps(v) for k, v in metadata.items()},
    )
