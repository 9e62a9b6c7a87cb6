"""The whole medallion on generated data, with real Dagster runs into a temporary data directory."""

import dagster as dg
import pyarrow.compute as pc

from medallion_platform.catalog import EmbeddedCatalog
from medallion_platform.definitions import build_definitions
from medallion_platform.defs.notebooks import RUNS_ON
from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.defs.sensors import late_event_sensor
from medallion_platform.lake.lakehouse import Lakehouse


def test_every_run_succeeds_and_every_asset_is_materialized(sample_lake):
    _, manifest, report, instance = sample_lake
    assert report.runs and report.success, report.runs
    assert report.touched_dates == sorted(manifest.event_dates)
    graph = build_definitions().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        if graph.get(key).tags.get(RUNS_ON) == "databricks":  # a notebook task: see medallion_tests/databricks/
            assert instance.get_latest_materialization_event(key) is None, key
            continue
        assert instance.get_latest_materialization_event(key) is not None, key


def test_every_contract_check_passed(sample_lake):
    _, _, _, instance = sample_lake
    graph = build_definitions().resolve_asset_graph()
    evaluated = 0
    for check_key in graph.asset_check_keys:
        records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=20)
        # Partitioned checks also leave one PLANNED record per partition of a range run:
        # results from the asset body are recorded for the run, not per partition.
        done = [r for r in records if r.status.value != "PLANNED"]
        assert done, check_key
        for record in done:
            assert record.status.value == "SUCCEEDED", (check_key, record.evaluation)
            assert record.evaluation.passed
            evaluated += 1
    assert evaluated >= 18


def test_row_counts_reconcile_exactly_with_what_was_generated(sample_lake):
    settings, manifest, _, _ = sample_lake
    lake = Lakehouse(settings)
    for name in ("order_events", "customers", "products"):
        assert lake.raw(name).read().num_rows == manifest.raw_rows[name], name
        trusted = lake.trusted(name).read()
        assert trusted.num_rows == manifest.valid_unique[name], name
        bad = lake.quarantine(name).read()
        by_rule = {r["values"]: r["counts"] for r in pc.value_counts(bad.column("_rule")).to_pylist()}
        assert by_rule == dict(manifest.quarantine_by_rule[name]), name
    events = lake.trusted("order_events").read()
    assert pc.count_distinct(events.column("event_id")).as_py() == events.num_rows


def test_reconciliation_recorded_per_run(sample_lake):
    _, manifest, _, instance = sample_lake
    totals = {"raw_rows": 0, "inserted": 0, "updated": 0, "duplicates": 0, "quarantined": 0}
    records = instance.fetch_materializations(dg.AssetKey(["trusted", "order_events"]), limit=100).records
    per_run = {r.run_id: r for r in records}  # a range run records one materialization per partition
    for record in per_run.values():
        metadata = record.asset_materialization.metadata
        assert metadata["reconciled"].value is True
        for field in totals:
            totals[field] += metadata[field].value
    assert totals["raw_rows"] == manifest.raw_rows["order_events"]
    assert totals["inserted"] == manifest.valid_unique["order_events"]
    assert totals["duplicates"] == manifest.duplicates["order_events"]
    assert totals["quarantined"] == manifest.quarantined("order_events")
    assert totals["raw_rows"] == sum(v for k, v in totals.items() if k != "raw_rows")


def test_catalog_names_every_table_and_queries_by_name(sample_lake):
    settings, manifest, _, _ = sample_lake
    catalog = EmbeddedCatalog(settings)
    entries = catalog.entries()
    assert {
        "medallion.raw.order_events",
        "medallion.trusted.order_events",
        "medallion.trusted.order_events_quarantine",
        "medallion.trusted.customers",
        "medallion.refined.daily_revenue",
        "medallion.refined.customer_lifetime",
        "medallion.refined.product_performance",
    } <= set(entries)
    customers = entries["medallion.trusted.customers"]
    assert customers.pii == ["name", "email"] and customers.owner == "team:crm-data"
    assert [c["name"] for c in customers.columns if c["pii"]] == ["name", "email"]
    (count,) = catalog.sql("SELECT count(*) AS n FROM medallion.trusted.order_events").column("n").to_pylist()
    assert count == manifest.valid_unique["order_events"]
    lifetime = catalog.sql("SELECT * FROM medallion.refined.customer_lifetime")
    assert "email" not in lifetime.column_names and "name" not in lifetime.column_names


def test_refined_totals_match_trusted(sample_lake):
    settings, _, _, _ = sample_lake
    catalog = EmbeddedCatalog(settings)
    placed = (
        catalog.sql("SELECT sum(quantity) AS units FROM medallion.trusted.order_events WHERE status = 'placed'")
        .column("units")[0]
        .as_py()
    )
    for table in ("daily_revenue", "customer_lifetime", "product_performance"):
        units = catalog.sql(f"SELECT sum(units) AS units FROM medallion.refined.{table}").column("units")[0].as_py()
        assert units == placed, table


def test_late_event_sensor_requests_nothing_when_refined_is_up_to_date(sample_lake):
    settings, _, report, instance = sample_lake
    assert report.refined_dates["daily_revenue"] == report.touched_dates  # a new table: every date built
    context = dg.build_sensor_context(
        instance=instance, resources={"lakehouse": LakehouseResource(data_dir=str(settings.data_dir), env="local")}
    )
    result = late_event_sensor(context)
    assert result.run_requests == [] and result.skip_reason
