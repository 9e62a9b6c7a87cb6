"""Asset checks of the refined tables, evaluated with DuckDB over what the run just wrote.

Each refined table declares its key, its amounts and the figures it must agree on with its fact input
(`RefinedTable.key`, `.non_negative`, `.tallies`); the checks read the dates the run built (the whole
table when unpartitioned) and the fact's rows of the same event dates, at the fact version they were built
from. Like the trusted checks they are blocking: a failure fails the run (red in the UI, and the automation
retries the dates).
"""

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
import pyarrow.dataset as ds

from medallion_platform.engine.base import Engine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.write.table_state import cluster_of, has_table, table_at
from medallion_platform.zones.refined.base import built_from
from medallion_platform.zones.refined.model import PARTITION, RefinedTable

if TYPE_CHECKING:
    from medallion_platform.engine.databricks import DatabricksEngine

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
    lake: Lakehouse,
    table: RefinedTable,
    key: dg.AssetKey,
    dates: Sequence[str] | None,
    engine: Engine | None = None,
) -> list[dg.AssetCheckResult]:
    """Evaluates the table's checks over `dates` (None: the whole table, and every fact row).

    The fact is read at the version the table's rows were built from (`built_from`): a trusted commit
    landing between the refresh and its checks (a sensor's run racing a backfill) is the next refresh's,
    not a mismatch. On a cluster (`engine`) the same SQL runs on its Spark over both tables read by name
    (the fact at that version with `versionAsOf`); elsewhere on DuckDB over their Delta files."""
    scoped = dates if table.partitioned else None
    version = built_from(lake, table, engine)
    described = {
        "scope": ",".join(dates) if dates and table.partitioned else "table",
        "fact_version": "current" if version is None else version,
    }
    cluster = cluster_of(engine)
    if cluster is not None:
        return _on_spark(cluster, lake, table, key, scoped, version, described)
    scope = _scope(scoped)
    refined = lake.refined(table.name).duckdb_dataset(scope)
    fact = lake.trusted(table.fact).duckdb_dataset(scope, version=version)
    con = duckdb.connect()
    try:
        con.register("r", refined if refined is not None else table.schema.empty_table())
        if fact is not None:
            con.register("f", fact)

        def scalar(sql: str) -> object:
            return _scalar(con, sql)

        return _evaluate(scalar, table, key, fact is not None, described)
    finally:
        con.close()


def _on_spark(
    engine: "DatabricksEngine",
    lake: Lakehouse,
    table: RefinedTable,
    key: dg.AssetKey,
    dates: Sequence[str] | None,
    version: int | None,
    described: dict,
) -> list[dg.AssetCheckResult]:
    """The checks as Spark SQL over temporary views of the refined table and the fact (pruned to `dates`)."""
    values = None if dates is None else [dt.date.fromisoformat(d) for d in dates]
    column = None if dates is None else PARTITION
    refined, fact = lake.refined(table.name), lake.trusted(table.fact)
    views = {
        "r": table_at(engine, refined, None, column, values)
        if has_table(engine, refined)
        else engine.dataframe(table.schema.empty_table())
    }
    has_fact = has_table(engine, fact)
    if has_fact:
        views["f"] = table_at(engine, fact, version, column, values)
    with engine.sql_over(views) as scalar:
        return _evaluate(scalar, table, key, has_fact, described)


def _evaluate(
    scalar: Callable[[str], object], table: RefinedTable, key: dg.AssetKey, has_fact: bool, described: dict
) -> list[dg.AssetCheckResult]:
    """The checks, each one SQL query over the views `r` (the refined rows) and `f` (the fact's rows)."""
    results = []
    if table.non_negative:
        negative = " OR ".join(f"{c} < 0" for c in table.non_negative)
        bad = scalar(f"SELECT count(*) FROM r WHERE {negative}")
        results.append(_result(key, "amounts_non_negative", bad == 0, {"violations": bad, **described}))
    if table.key:
        # rows beyond one per key: the key as one row value with a constant (a lone column's NULL would
        # not be counted); one flat aggregate (Sail's planner refuses the grouped subquery's nullability)
        columns = ", ".join(table.key)
        bad = scalar(f"SELECT count(*) - count(DISTINCT ({columns}, 0)) FROM r")
        results.append(_result(key, "key_unique", bad == 0, {"duplicate_rows": bad, **described}))
    if table.tallies:
        results.append(_reconciliation(scalar, table, key, has_fact, described))
    return results


def _reconciliation(
    scalar: Callable[[str], object], table: RefinedTable, key: dg.AssetKey, has_fact: bool, described: dict
) -> dg.AssetCheckResult:
    figures: dict[str, dict[str, str]] = {}
    for tally in table.tallies:
        refined = scalar(f"SELECT coalesce(({tally.refined}), 0) FROM r")
        fact = scalar(f"SELECT coalesce(({tally.fact}), 0) FROM f") if has_fact else 0
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
