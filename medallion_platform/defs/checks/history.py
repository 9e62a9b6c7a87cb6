"""The blocking checks of a history table (`trusted/<dataset>_history`), evaluated with DuckDB over the table."""

import dagster as dg
import duckdb

from medallion_platform.contracts import Contract
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.sql import idents

__all__ = ["history_check_results", "history_check_specs"]

CHECKS = {
    "one_current_version": "every key has exactly one current version",
    "versions_do_not_overlap": "a key's versions follow each other: each ends where the next begins",
}


def history_check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The blocking checks of a history table."""
    return [dg.AssetCheckSpec(name, asset=key, description=text, blocking=True) for name, text in CHECKS.items()]


def _violations(contract: Contract) -> dict[str, str]:
    keys = idents(contract.primary_key)
    order = idents([*contract.primary_key, "valid_from", *(contract.changes.sequence_by if contract.changes else [])])
    return {
        "one_current_version": f"SELECT count(*) FROM (SELECT {keys} FROM t GROUP BY {keys} "
        "HAVING count(*) FILTER (WHERE is_current) <> 1)",
        "versions_do_not_overlap": "SELECT count(*) FROM (SELECT valid_to, is_current, "
        f"lead(valid_from) OVER (PARTITION BY {keys} ORDER BY {order}) AS next_from FROM t) "
        "WHERE valid_to IS DISTINCT FROM next_from OR (is_current <> (next_from IS NULL))",
    }


def history_check_results(table: DeltaTableIO, contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    """Evaluates every check on the whole history table."""
    dataset = table.duckdb_dataset()
    con = duckdb.connect()
    results = []
    try:
        if dataset is not None:
            con.register("t", dataset)
        for name, sql in _violations(contract).items():
            bad = 0 if dataset is None else int(con.execute(sql).fetchall()[0][0])
            results.append(
                dg.AssetCheckResult(asset_key=key, check_name=name, passed=bad == 0, metadata={"violations": bad})
            )
    finally:
        con.close()
    return results
