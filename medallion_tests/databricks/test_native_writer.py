"""`SparkNativeDeltaWriter` on the stand-in's cluster engine (Sail, Spark Connect, native Delta, the stand-in's
Unity Catalog): tables read and written by three-level name, idempotent without app transactions, replaceWhere
checked, schema evolution, figures from the write; and the write options the platform refuses."""

import datetime as dt

import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from medallion_devtools.standins.databricks import LocalDatabricks

from medallion_platform.catalog import TableEntry
from medallion_platform.catalog.unity import UnityCatalog
from medallion_platform.engine.databricks import DIVERGENCES, DatabricksEngine, RefusedWriteOption
from medallion_platform.engine.databricks import refuse_dangerous_options as refuse
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.write.app_transactions import transaction_version
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Append, Merge, OverwritePartitions, TableWrite
from medallion_tests.helpers import event, jsonl, land

pytestmark = [pytest.mark.databricks, pytest.mark.spark]

ENTRY = TableEntry(description="a test table", owner="medallion-platform")


@pytest.fixture
def catalog(lake: Lakehouse, local_databricks: LocalDatabricks) -> UnityCatalog:
    client = WorkspaceClient(host=local_databricks.host, token=local_databricks.token, auth_type="pat")
    return UnityCatalog(lake.settings, client=client)


SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("amount", pa.int64()),
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("event_date", pa.date32()),
    ]
)
D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)


def _rows(*rows: tuple, schema: pa.Schema = SCHEMA) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)


def _write(lake, catalog, engine, name: str, rows: pa.Table, spec, schema: pa.Schema = SCHEMA, entry=ENTRY):
    write = TableWrite(engine=engine, frame=engine.dataframe(rows), spec=spec, schema=schema, entry=entry)
    return persist(lake, ["trusted", name], write, catalog=catalog)


def _read(engine: DatabricksEngine, lake: Lakehouse, name: str) -> list[tuple]:
    table = lake.trusted(name)
    assert engine.spark.catalog.tableExists(table.name)
    return sorted(tuple(r) for r in engine.spark.table(table.name).collect())


def test_the_cluster_engine_is_spark_connect_with_native_delta_and_sail_divergences(engine: DatabricksEngine):
    assert engine.has_delta()
    with pytest.raises(Exception, match=r"JVM_ATTRIBUTE_NOT_SUPPORTED"):
        engine.spark.sparkContext  # noqa: B018  # standard access mode: no sc
    assert engine.diverges("app_transactions") and set(DIVERGENCES) >= {"app_transactions", "replace_where_check"}


def test_a_retried_append_adds_nothing_without_app_transactions(lake, catalog, engine):
    """Sail ignores txnAppId: the append is an insert-only MERGE on the record's lineage, and the batch's app
    transaction follows in the table's ledger (`write/app_transactions.py`); a retry before it is recorded (the
    driver killed between the two) adds no row, one after it is skipped."""
    rows = _rows(("a", 1, "f1", 1, D1), ("b", 2, "f1", 2, D1))
    first = _write(lake, catalog, engine, "appended", rows, Append(partition_by=("event_date",), txns={"app": 1}))
    assert (first.inserted, first.source_rows) == (2, 2)
    table = lake.trusted("appended")
    assert transaction_version(engine, table, "app") == 1
    assert [f.name for f in pa.schema(table.table().schema().to_arrow())] == SCHEMA.names  # order kept
    more = _rows(("b", 2, "f1", 2, D1), ("c", 3, "f2", 1, D2))
    # the same rows again under the next batch: as if batch 2 had been written but its commit not recorded
    second = _write(lake, catalog, engine, "appended", more, Append(partition_by=("event_date",), txns={"app": 2}))
    assert second.inserted == 1
    again = _write(lake, catalog, engine, "appended", more, Append(partition_by=("event_date",), txns={"app": 2}))
    assert again.skipped
    assert [r[0] for r in _read(engine, lake, "appended")] == ["a", "b", "c"]


def test_merge_by_name_counts_what_it_did_and_evolves_the_schema(lake, catalog, engine):
    spec = Merge(keys=("id",), when_matched="update", partition_column="event_date", partition_values=(D1,))
    _write(lake, catalog, engine, "merged", _rows(("a", 1, "f1", 1, D1), ("b", 2, "f1", 2, D1)), spec)
    wider = pa.schema([*SCHEMA, ("note", pa.string())])
    rows = _rows(("b", 20, "f2", 1, D1, "x"), ("c", 3, "f2", 2, D1, None), schema=wider)
    result = _write(lake, catalog, engine, "merged", rows, spec, schema=wider)
    assert (result.inserted, result.updated, result.source_rows) == (1, 1, 2)
    assert _read(engine, lake, "merged") == [
        ("a", 1, "f1", 1, D1, None),
        ("b", 20, "f2", 1, D1, "x"),
        ("c", 3, "f2", 2, D1, None),
    ]
    info = catalog.client.tables.get(lake.trusted("merged").name)
    assert [c.name for c in info.columns] == wider.names  # registration synced the new column


@pytest.mark.parametrize("partitioned", [True, False])
def test_a_tables_unindexed_columns_get_no_statistics_from_sparks_first_write_or_later_ones(
    lake, catalog, engine, partitioned
):
    """The first write goes by path: its options set the table's property (Delta keeps `delta.` options), and
    the writes by name after it honour it. (Partitioned, Sail's first write goes through `create`, see
    DIVERGENCES `partition_order`.)"""
    entry = TableEntry(description="people", owner="medallion-platform", unindexed=("id",))
    spec = Merge(keys=("id",), when_matched="update", partition_column="event_date" if partitioned else None)
    _write(
        lake, catalog, engine, "people", _rows(("alice", 1, "f1", 1, D1), ("bob", 2, "f1", 2, D1)), spec, entry=entry
    )
    _write(
        lake, catalog, engine, "people", _rows(("bob", 20, "f2", 1, D1), ("carol", 3, "f2", 2, D1)), spec, entry=entry
    )
    assert [r[0] for r in _read(engine, lake, "people")] == ["alice", "bob", "carol"]
    table = lake.trusted("people")
    assert table.stats_columns() == ["amount", "_source_file", "_source_line", "event_date"]
    bounds = [f.bounds for f in table.files() or []]
    assert len(bounds) >= 2 and all({c for c, _, _ in b} & {"id"} == set() for b in bounds)
    assert all({c for c, _, _ in b} >= {"amount"} for b in bounds)  # the rest still prunes


def test_a_partition_overwrite_replaces_only_its_partitions_and_refuses_stray_rows(lake, catalog, engine):
    spec = OverwritePartitions(partition_column="event_date", values=(D1,))
    _write(
        lake, catalog, engine, "replaced", _rows(("a", 1, "f1", 1, D1), ("b", 2, "f1", 2, D2)), Append(("event_date",))
    )
    result = _write(lake, catalog, engine, "replaced", _rows(("a2", 10, "f2", 1, D1)), spec)
    assert result.inserted == 1
    assert [r[0] for r in _read(engine, lake, "replaced")] == ["a2", "b"]
    with pytest.raises(ValueError, match="DELTA_REPLACE_WHERE_MISMATCH"):  # Sail itself would accept it
        _write(lake, catalog, engine, "replaced", _rows(("a3", 1, "f3", 1, D1), ("x", 9, "f3", 2, D2)), spec)
    assert [r[0] for r in _read(engine, lake, "replaced")] == ["a2", "b"]


@pytest.mark.parametrize(
    "options",
    [
        {"txnAppId": "app", "txnVersion": "3"},
        {"partitionOverwriteMode": "dynamic"},
        {"spark.sql.sources.partitionOverwriteMode": "DYNAMIC"},
        {"readChangeFeed": "true"},
    ],
)
def test_options_an_engine_ignores_silently_are_refused(options):
    with pytest.raises(RefusedWriteOption, match="refused"):
        refuse(options)


def test_options_that_hold_everywhere_pass():
    refuse({"txnAppId": "app", "txnVersion": "3"}, honours_app_transactions=True)
    refuse({"mergeSchema": "true", "partitionOverwriteMode": "static", "userMetadata": "{}"})


def _landed(settings: Settings) -> None:
    land(
        settings,
        "order_events",
        "2026/11/01/10/batch-1",
        jsonl(
            event(1, quantity=2),
            event(1, quantity=2),  # the same event delivered twice
            event(2, event_time="2026-11-01T23:30:00-02:00"),  # lands on 11-02 in UTC
            event(3, quantity=0),  # quarantined
            "{this is not json",  # quarantined
        ),
    )


def _table_rows(table) -> list[tuple]:
    rows = table.read()
    columns = [c for c in rows.column_names if c not in ("_ingested_at", "_batch_id")]
    return sorted(tuple(str(v) for v in r.values()) for r in rows.select(columns).to_pylist())


def test_a_promotion_killed_between_sails_commit_and_its_app_transaction_reruns_without_duplicates_or_gaps(
    lake, engine, contracts, local_databricks, monkeypatch, tmp_path
):
    """The driver dies right after Sail committed quarantine, before the batch's app transaction was recorded
    (the window a kill mid-write leaves on this path): the rerun writes quarantine again and trusted once, and
    both tables equal the embedded run's."""
    from medallion_platform.engine import EmbeddedEngine
    from medallion_platform.write import writers
    from medallion_platform.zones.flow import ingest_raw
    from medallion_platform.zones.trusted import promote

    for key, value in local_databricks.environ().items():
        if key.startswith("DATABRICKS_"):
            monkeypatch.setenv(key, value)
    contract = contracts["order_events"]
    _landed(lake.settings)
    ingest_raw(lake, contract)
    recorded = writers.record_transactions

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("driver killed after Sail's commit")

    monkeypatch.setattr(writers, "record_transactions", killed)
    with pytest.raises(KeyboardInterrupt):
        promote(lake, engine, contract)
    assert lake.quarantine("order_events").read().num_rows == 2  # committed, its batch not recorded
    monkeypatch.setattr(writers, "record_transactions", recorded)
    rerun = promote(lake, engine, contract)
    assert (rerun.inserted, rerun.quarantined) == (2, 2)
    assert promote(lake, engine, contract).skipped  # and the next retry writes nothing

    embedded_lake = Lakehouse(Settings.from_env({}, data_dir=tmp_path / "embedded"))
    _landed(embedded_lake.settings)
    ingest_raw(embedded_lake, contract)
    local = EmbeddedEngine()
    try:
        promote(embedded_lake, local, contract)
    finally:
        local.close()
    for name in ("order_events", "order_events_quarantine"):
        assert _table_rows(lake.for_key(["trusted", name])) == _table_rows(embedded_lake.for_key(["trusted", name]))


def test_maintenance_on_unity_catalog_is_optimize_and_vacuum_sql_on_the_warehouse(
    lake, catalog, engine, local_databricks
):
    """Sail cannot parse OPTIMIZE/VACUUM (DIVERGENCES `maintenance_sql`): the platform runs them on the SQL
    warehouse, which has them."""
    from medallion_platform.catalog import CatalogError

    for n in range(3):  # three commits, three small files
        _write(lake, catalog, engine, "compacted", _rows((f"r{n}", n, "f", n, D1)), Append(txns={"app": n + 1}))
    entry = catalog.entries()[lake.trusted("compacted").name]
    before = _read(engine, lake, "compacted")
    done = catalog.maintain(entry, retention_hours=168)
    assert (done.files_removed, done.files_added) == (3, 1)
    assert _read(engine, lake, "compacted") == before
    statements = [r.body.get("statement") for r in local_databricks.requests if isinstance(r.body, dict)]
    assert any(s and s.startswith("OPTIMIZE") for s in statements)
    assert any(s and s.startswith("VACUUM") and s.endswith("RETAIN 168 HOURS") for s in statements)
    with pytest.raises(CatalogError, match="at least 168 hours"):
        catalog.maintain(entry, retention_hours=0)
