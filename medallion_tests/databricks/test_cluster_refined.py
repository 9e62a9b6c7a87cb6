"""The refined step on a cluster (the `databricks` engine, here the stand-in's Sail cluster over its Unity
Catalog): the dates pending, the refresh, its coverage record and its checks all asked of the cluster's Spark
(the fact read by name at the version recorded, the logs' commits read by Spark), with no driver-side route to
table data (delta-rs, DuckDB, boto3, a pyarrow file system); every refined table equals the embedded run's."""

from pathlib import Path

import dagster as dg
import pytest

from medallion_platform.engine import EmbeddedEngine
from medallion_platform.engine.databricks import DatabricksEngine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import ingest_and_promote
from medallion_platform.zones.history import refresh_history
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.base import refresh_refined
from medallion_platform.zones.refined.coverage import pending_dates
from medallion_tests.databricks.test_cluster_source_step import cluster_env, driver_data_untouched  # noqa: F401
from medallion_tests.databricks.test_native_writer import _table_rows
from medallion_tests.helpers import event, jsonl, land
from medallion_tests.zones.test_refined import land_master_data

pytestmark = [pytest.mark.databricks, pytest.mark.spark, pytest.mark.usefixtures("cluster_env")]

SOURCES = ("customers", "products", "order_events")


def _land_first(settings: Settings) -> None:
    land_master_data(settings)
    land(
        settings,
        "order_events",
        "2026/11/02/09/batch-1",
        jsonl(
            event(1, quantity=2),
            event(2, customer_id="cus-000002", product_id="prd-00002"),
            event(3, event_time="2026-11-02T10:00:00Z", status="cancelled"),
            event(4, event_time="2026-11-03T08:00:00Z", quantity=5),
        ),
    )


def _land_late(settings: Settings) -> None:
    """A late event for a stored date and one for a new date."""
    land(
        settings,
        "order_events",
        "2026/11/04/09/batch-2",
        jsonl(event(5, event_time="2026-11-02T18:00:00Z", quantity=3), event(6, event_time="2026-11-04T07:00:00Z")),
    )


def _promote(lake: Lakehouse, engine, contracts) -> None:
    for name in SOURCES:
        ingest_and_promote(lake, engine, contracts[name])
    refresh_history(lake, engine, contracts["customers"])  # segment_revenue joins the customers' history


def _refresh_on_the_cluster(lake: Lakehouse, engine: DatabricksEngine) -> dict[str, tuple[list[str] | None, dict]]:
    """Each refined table's pending dates, refresh and checks on the cluster, none of it through the driver: the
    dates each built and its checks' verdicts."""
    from medallion_platform.defs.checks.refined import refined_check_results

    done = {}
    with driver_data_untouched() as used:
        for table in REFINED_TABLES:
            dates = pending_dates(lake, table, engine) if table.partitioned else None
            refresh_refined(lake, engine, table, dates)  # the plan, its write and the catalog's registration
            key = dg.AssetKey(["refined", table.name])
            checks = refined_check_results(lake, table, key, dates, engine)
            done[table.name] = (dates, {str(c.check_name): c.passed for c in checks})
    assert used == []
    return done


def _embedded(tmp_path: Path, contracts, *batches) -> Lakehouse:
    lake = Lakehouse(Settings.from_env({}, data_dir=tmp_path / "embedded"))
    local = EmbeddedEngine()
    try:
        for batch in batches:
            batch(lake.settings)
            _promote(lake, local, contracts)
            for table in REFINED_TABLES:
                refresh_refined(lake, local, table, pending_dates(lake, table) if table.partitioned else None)
    finally:
        local.close()
    return lake


def test_refined_on_a_cluster_reads_and_writes_through_spark_and_equals_the_embedded_tables(
    lake: Lakehouse, engine: DatabricksEngine, contracts, tmp_path: Path
):
    _land_first(lake.settings)
    _promote(lake, engine, contracts)
    first = _refresh_on_the_cluster(lake, engine)
    assert first["daily_revenue"][0] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert all(all(verdicts.values()) and verdicts for _, verdicts in first.values()), first
    embedded = _embedded(tmp_path, contracts, _land_first)
    for table in REFINED_TABLES:
        assert _table_rows(lake.refined(table.name)) == _table_rows(embedded.refined(table.name)), table.name

    # a later batch: only the late date and the new one are pending, read from the logs by Spark
    _land_late(lake.settings)
    _promote(lake, engine, contracts)
    # what delta-rs reads from the same logs (outside the guard) judges the cluster's Spark reading of them
    by_delta_rs = {t.name: pending_dates(lake, t) for t in REFINED_TABLES if t.partitioned}
    second = _refresh_on_the_cluster(lake, engine)
    for name, dates in by_delta_rs.items():
        assert second[name][0] == dates, name
        assert {"2026-11-02", "2026-11-04"} <= set(dates), name  # the late date and the new one
    assert all(all(verdicts.values()) for _, verdicts in second.values()), second
    embedded = _embedded(tmp_path / "again", contracts, _land_first, _land_late)
    for table in REFINED_TABLES:
        assert _table_rows(lake.refined(table.name)) == _table_rows(embedded.refined(table.name)), table.name

    # nothing new: nothing pending, and the checks still hold
    again = _refresh_on_the_cluster(lake, engine)
    assert {name: dates for name, (dates, _) in again.items()} == {
        "daily_revenue": [],
        "customer_lifetime": None,
        "product_performance": [],
        "segment_revenue": [],
    }


def test_the_cluster_checks_fail_on_a_refined_table_that_disagrees_with_its_fact(
    lake: Lakehouse, engine: DatabricksEngine, contracts
):
    """A duplicated refined row (written by Spark behind the platform's back) fails key_unique and the
    reconciliation with the fact, evaluated on the cluster."""
    from medallion_platform.defs.checks.refined import refined_check_results
    from medallion_platform.zones.refined.daily_revenue import TABLE

    _land_first(lake.settings)
    _promote(lake, engine, contracts)
    _refresh_on_the_cluster(lake, engine)
    name = lake.refined("daily_revenue").name
    engine.spark.sql(f"INSERT INTO {name} SELECT * FROM {name} WHERE event_date = DATE'2026-11-01'")
    checks = refined_check_results(lake, TABLE, dg.AssetKey(["refined", "daily_revenue"]), ["2026-11-01"], engine)
    verdicts = {str(c.check_name): c.passed for c in checks}
    assert verdicts == {"amounts_non_negative": True, "key_unique": False, "reconciles_with_fact": False}
