"""The blocking checks of a history table (`trusted/<dataset>_history`): the same SQL on DuckDB over the table's
files, or on a cluster's Spark over the table read by name."""

from collections.abc import Callable
from typing import TYPE_CHECKING

import dagster as dg
import duckdb

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.sql import ident, spark_ident
from medallion_platform.write.table_state import cluster_of, has_table, table_at

if TYPE_CHECKING:
    from medallion_platform.engine.databricks import DatabricksEngine

__all__ = ["history_check_results", "history_check_specs"]

CHECKS = {
    "one_current_version": "every key has exactly one current version",
    "versions_do_not_overlap": "a key's versions follow each other: each ends where the next begins",
}


def history_check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The blocking checks of a history table."""
    return [dg.AssetCheckSpec(name, asset=key, description=text, blocking=True) for name, text in CHECKS.items()]


def _violations(contract: Contract, quote: Callable[[str], str] = ident) -> dict[str, str]:
    """Each check's query counting its violations in the view `t` (identifiers quoted with `quote`: DuckDB's
    double quotes or Spark's back quotes)."""
    keys = ", ".join(map(quote, contract.primary_key))
    sequence = contract.changes.sequence_by if contract.changes else []
    order = ", ".join(map(quote, [*contract.primary_key, "valid_from", *sequence]))
    return {
        "one_current_version": f"SELECT count(*) FROM (SELECT {keys} FROM t GROUP BY {keys} "
        "HAVING count(*) FILTER (WHERE is_current) <> 1)",
        "versions_do_not_overlap": "SELECT count(*) FROM (SELECT valid_to, is_current, "
        f"lead(valid_from) OVER (PARTITION BY {keys} ORDER BY {order}) AS next_from FROM t) "
        "WHERE valid_to IS DISTINCT FROM next_from OR (is_current <> (next_from IS NULL))",
    }


def history_check_results(
    table: DeltaTableIO, contract: Contract, key: dg.AssetKey, engine: Engine | None = None
) -> list[dg.AssetCheckResult]:
    """Evaluates every check on the whole history table: on a cluster (`engine`) as Spark SQL over the table
    read by name, elsewhere on DuckDB over its Delta files."""
    cluster = cluster_of(engine)
    if cluster is not None:
        return _on_spark(cluster, table, contract, key)
    dataset = table.duckdb_dataset()
    con = duckdb.connect()
    try:
        if dataset is not None:
            con.register("t", dataset)
        return _results(key, contract, None if dataset is None else lambda sql: con.execute(sql).fetchall()[0][0])
    finally:
        con.close()


def _on_spark(
    engine: "DatabricksEngine", table: DeltaTableIO, contract: Contract, key: dg.AssetKey
) -> list[dg.AssetCheckResult]:
    """The checks as Spark SQL over a temporary view of the whole table read by name."""
    if not has_table(engine, table):
        return _results(key, contract, None)
    with engine.sql_over({"t": table_at(engine, table, None)}) as count:
        return _results(key, contract, count, spark_ident)


def _results(
    key: dg.AssetKey,
    contract: Contract,
    scalar: Callable[[str], object] | None,
    quote: Callable[[str], str] = ident,
) -> list[dg.AssetCheckResult]:
    """Each check's verdict from its query's count of violations (`scalar` None: no table, nothing violated)."""
    results = []
    for name, sql in _violations(contract, quote).items():
        bad = 0 if scalar is None else int(scalar(sql))  # type: ignore[call-overload]
        results.append(
            dg.AssetCheckResult(asset_key=key, check_name=name, passed=bad == 0, metadata={"violations": bad})
        )
    return results
