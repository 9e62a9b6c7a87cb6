"""The assets as Dagster sees them: partitions from the data's first day, every partition in one
"materialize all" run, materializations with 0 new rows for runs that find nothing new, and dates no partition
holds."""

from pathlib import Path

import dagster as dg
import pytest

from medallion_platform.contracts import load_contracts
from medallion_platform.definitions import build_definitions, platform_resources
from medallion_platform.defs.keys import refined_key, source_keys, trusted_key
from medallion_platform.defs.notebooks import RUNS_ON, SKIPPED
from medallion_platform.defs.partitions import DAILY, EVENT_DATE_MAPPING, partition_dates
from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import ingest_raw
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.trusted import promote
from medallion_tests.helpers import event, jsonl, land


def _assets(defs: dg.Definitions) -> list:
    """Every asset that runs here (the Databricks notebook asset runs only on Databricks)."""
    return [a for a in defs.assets or [] if all(t.get(RUNS_ON) != "databricks" for t in a.tags_by_key.values())]


def _all_partitions() -> dict[str, str]:
    keys = DAILY.get_partition_keys()
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


@pytest.fixture(scope="module")
def materialized_all(tmp_path_factory):
    """A small generated lake, every asset over every partition in one run (a single-run backfill)."""
    data_dir = tmp_path_factory.mktemp("all_partitions")
    settings = Settings.from_env({}, data_dir=data_dir)
    generate_sample_data(Path(settings.landing_root), SampleSpec(orders=120, customers=80, products=20))
    defs = build_definitions()
    (data_dir / ".dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(data_dir / ".dagster")) as instance:
        result = dg.materialize(
            _assets(defs), resources=platform_resources(settings), instance=instance, tags=_all_partitions()
        )
        yield settings, defs, instance, result


def test_partitions_start_at_the_sample_datas_first_day():
    assert (
        DAILY.start.date().isoformat() == "2026-11-01" == load_contracts()["order_events"].partition.start.isoformat()
    )
    assert SampleSpec().start.isoformat() == "2026-11-01"


def test_materialize_all_over_every_partition_materializes_every_asset_and_partition(materialized_all):
    _, defs, instance, result = materialized_all
    assert result.success
    graph = defs.resolve_asset_graph()
    for assets_def in _assets(defs):
        for key in assets_def.keys:
            assert instance.get_latest_materialization_event(key) is not None, key
            if graph.get(key).partitions_def is not None:
                assert instance.get_materialized_partitions(key) == set(DAILY.get_partition_keys()), key


def test_every_check_of_the_run_passed(materialized_all):
    _, _, _, result = materialized_all
    evaluations = result.get_asset_check_evaluations()
    refined = {e.asset_key for e in evaluations if e.asset_key.path[0] == "refined"}
    assert refined == {refined_key(t.name) for t in REFINED_TABLES}
    assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]


def test_trusted_and_refined_materializations_carry_their_column_lineage(materialized_all):
    """The UI's column lineage: `dagster/column_lineage` on each trusted and refined materialization."""
    _, _, instance, _ = materialized_all
    lineage = {}
    for key in (trusted_key("customers"), refined_key("customer_lifetime")):
        found = instance.get_latest_materialization_event(key)
        assert found is not None and found.asset_materialization is not None, key
        lineage[key] = found.asset_materialization.metadata["dagster/column_lineage"].value
    segment = lineage[refined_key("customer_lifetime")].deps_by_column["segment"]
    assert segment == [dg.TableColumnDep(asset_key=trusted_key("customers"), column_name="segment")]
    email = lineage[trusted_key("customers")].deps_by_column["email"]
    assert email == [dg.TableColumnDep(asset_key=source_keys("customers")[0], column_name="email")]


def test_a_run_that_finds_nothing_new_materializes_what_it_was_asked_for_with_zero_new_rows(materialized_all):
    """A backfill (or automation) that asks again sees every asset materialized: new rows 0, the table's
    current Delta version and row count, and the blocking checks passing on 0 rows (0 = 0 + 0 + 0 + 0 + 0)."""
    settings, defs, instance, _ = materialized_all
    from medallion_platform.lake.lakehouse import Lakehouse

    lake = Lakehouse(settings)
    keys = source_keys("order_events")
    lifetime = refined_key("customer_lifetime")
    again = dg.materialize(
        _assets(defs),
        selection=dg.AssetSelection.assets(*keys),
        resources=platform_resources(settings),
        instance=instance,
        tags=_all_partitions(),
    )
    assert again.success
    assert again.get_asset_observation_events() == []
    materialized = {
        e.asset_key: e.event_specific_data.materialization.metadata for e in again.get_asset_materialization_events()
    }
    assert set(materialized) == set(keys)
    assert materialized[keys[0]]["new_files"].value == 0
    for key in keys[1:]:
        assert materialized[key]["new_rows"].value == 0
    for key in keys:
        table = lake.for_key(key.path)
        assert materialized[key]["rows_inserted"].value == 0
        assert materialized[key]["delta_version"].value == table.version()
        assert materialized[key]["dagster/row_count"].value == table.table().count() > 0
        # every partition of the range run is materialized again: nothing stays "missing"
        assert instance.get_materialized_partitions(key) == set(DAILY.get_partition_keys())
    assert materialized[keys[1]]["raw_rows"].value == 0 and materialized[keys[1]]["reconciled"].value is True
    checks = {e.check_name: e for e in again.get_asset_check_evaluations()}
    assert checks["reconciliation"].passed and checks["reconciliation"].metadata["raw_rows"].value == 0
    assert all(e.passed for e in checks.values()), [e for e in checks.values() if not e.passed]

    unchanged = dg.materialize(
        _assets(defs),
        selection=dg.AssetSelection.assets(lifetime),
        resources=platform_resources(settings),
        instance=instance,
    )
    assert unchanged.success
    [event] = unchanged.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["refresh"].value == "unchanged" and metadata["rows_inserted"].value == 0
    assert metadata["delta_version"].value == lake.refined("customer_lifetime").version()
    assert all(e.passed for e in unchanged.get_asset_check_evaluations())


def test_the_notebook_asset_outside_databricks_is_materialized_as_skipped(materialized_all):
    """Outside `databricks` the notebook asset succeeds with a clear skip that Dagster counts as done."""
    settings, defs, instance, _ = materialized_all
    notebook = dg.AssetKey(["refined", "daily_revenue_notebook"])
    result = dg.materialize(
        list(defs.assets or []),
        selection=dg.AssetSelection.assets(notebook),
        resources=platform_resources(settings),
        instance=instance,
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert "MEDALLION_ENV=databricks" in event.event_specific_data.materialization.metadata[SKIPPED].value
    assert not (settings.data_dir / "refined" / "daily_revenue_notebook").exists()


def test_refined_assets_are_described_owned_fresh_and_checked():
    graph = build_definitions().resolve_asset_graph()
    for table in REFINED_TABLES:
        node = graph.get(refined_key(table.name))
        columns = node.metadata["dagster/column_schema"].columns
        assert [c.name for c in columns] == table.schema.names
        assert all(c.description for c in columns), [c.name for c in columns if not c.description]
        assert node.owners == [table.owner]
        assert node.freshness_policy is not None
        checks = {k.name for k in graph.asset_check_keys if k.asset_key == node.key}
        assert checks == {"amounts_non_negative", "key_unique", "reconciles_with_fact"}
        if table.partitioned:
            mapping = graph.get_partition_mapping(node.key, trusted_key(table.fact))
            assert mapping == EVENT_DATE_MAPPING
            # event date 2026-11-02 depends on the landing dates it can arrive on
            upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
                DAILY.empty_subset().with_partition_keys(["2026-11-02"]), DAILY, DAILY
            ).partitions_subset.get_partition_keys()
            assert sorted(upstream) == ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]


def test_dates_no_partition_holds_are_sorted_out_without_overflow():
    split = partition_dates(["9999-12-31", "2026-11-03", "1999-01-01", "2026-11-01", "not a date"])
    assert split.keys == ["2026-11-01", "2026-11-03"]
    assert split.outside == ["1999-01-01", "9999-12-31", "not a date"]


def test_refined_reports_event_dates_outside_the_partitions(settings, contracts, embedded):
    from medallion_platform.lake.lakehouse import Lakehouse

    lake = Lakehouse(settings)
    customers = (
        "customer_id,name,email,country,segment,updated_at\ncus-000001,Ana,a@example.com,DE,smb,2026-11-01T00:00:00Z\n"
    )
    products = (
        "product_id,name,category,list_price,currency,active,updated_at\n"
        "prd-00001,Kettle,kitchen,10.00,EUR,true,2026-11-01T00:00:00Z\n"
    )
    land(settings, "customers", "2026/11/01/c.csv", customers)
    land(settings, "products", "2026/11/01/p.csv", products)
    too_early, too_late = "1999-01-01T10:00:00Z", "2099-06-01T10:00:00Z"
    events = [event(1), event(2, event_time=too_early), event(3, event_time=too_late), event(4, event_time=too_late)]
    land(settings, "order_events", "2026/11/01/10/a", jsonl(*events))
    for name in ("customers", "products", "order_events"):
        ingest_raw(lake, contracts[name])
        promote(lake, embedded, contracts[name])
    from medallion_platform.defs.partitions import DAILY
    from medallion_platform.defs.sensors import pending_run_requests

    # the refined-dates sensor asks only for the dates the partitions hold (1999 and 2099 are left out)
    ranges = {
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in pending_run_requests(lake, DAILY)
    }
    assert ranges == {("2026-11-01", "2026-11-01")}
    defs = build_definitions()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            _assets(defs),
            selection=dg.AssetSelection.assets(refined_key("daily_revenue")),
            resources=platform_resources(settings),
            instance=instance,
            partition_key="2026-11-01",
        )
        assert result.success
        [materialized] = result.get_asset_materialization_events()
        metadata = materialized.event_specific_data.materialization.metadata
        assert metadata["dates_outside_partitions"].value == {"1999-01-01": 1, "2099-06-01": 2}
        warnings = [
            e.message for e in instance.all_logs(result.run_id) if e.level == 30 and "outside the daily" in e.message
        ]
        assert warnings and "1999-01-01 (1 rows), 2099-06-01 (2 rows)" in warnings[0]
