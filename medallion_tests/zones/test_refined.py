"""Refined tables against hand-computed values, and late events rebuilding only their dates."""

import datetime as dt
from decimal import Decimal

import pyarrow.dataset as ds

from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.flow import ingest_raw
from medallion_platform.zones.history import refresh_history
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.base import build_refined, refresh_refined
from medallion_platform.zones.trusted import promote
from medallion_tests.helpers import event, jsonl, land

TABLES = {t.name: t for t in REFINED_TABLES}
HEADER_C = "customer_id,name,email,country,segment,updated_at\n"
HEADER_P = "product_id,name,category,list_price,currency,active,updated_at\n"


def land_master_data(settings) -> None:
    """Two customers and two products, landed as their nightly exports."""
    land(
        settings,
        "customers",
        "2026/11/01/c.csv",
        HEADER_C + "cus-000001,Ana,ana@example.com,DE,smb,2026-11-01T00:00:00Z\n"
        "cus-000002,Ben,ben@example.com,US,consumer,2026-11-01T00:00:00Z\n",
    )
    land(
        settings,
        "products",
        "2026/11/01/p.csv",
        HEADER_P + "prd-00001,Kettle,kitchen,10.00,EUR,true,2026-11-01T00:00:00Z\n"
        "prd-00002,Novel,books,7.50,USD,true,2026-11-01T00:00:00Z\n",
    )


def _master_data(settings, contracts, embedded):
    lake = Lakehouse(settings)
    land_master_data(settings)
    for name in ("customers", "products"):
        ingest_raw(lake, contracts[name])
        promote(lake, embedded, contracts[name])
    refresh_history(lake, embedded, contracts["customers"])  # segment_revenue reads the customers' history


def _events(settings, contracts, embedded, relative, *events):
    lake = Lakehouse(settings)
    land(settings, "order_events", relative, jsonl(*events))
    ingest_raw(lake, contracts["order_events"])
    return promote(lake, embedded, contracts["order_events"])


def customers_export(settings, contracts, embedded, relative, *rows: str):
    """A nightly customers export with `rows` (CSV lines), landed and promoted to trusted."""
    lake = Lakehouse(settings)
    land(settings, "customers", relative, HEADER_C + "".join(f"{r}\n" for r in rows))
    ingest_raw(lake, contracts["customers"])
    promote(lake, embedded, contracts["customers"])


def _build(settings, embedded, name, dates):
    lake = Lakehouse(settings)
    table = TABLES[name]
    rows = build_refined(lake, embedded, table, dates if table.partitioned else None)
    refresh_refined(lake, embedded, table, dates if table.partitioned else None)
    return sorted(rows.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


DAY1 = "2026-11-01T09:00:00Z"


def _day_one(settings, contracts, embedded):
    _master_data(settings, contracts, embedded)
    return _events(
        settings,
        contracts,
        embedded,
        "2026/11/01/10/a",
        event(1, order_id="ord-00000001", quantity=2, unit_price="10.00", event_time=DAY1),
        event(2, order_id="ord-00000001", quantity=2, unit_price="10.00", status="paid", event_time=DAY1),
        event(3, order_id="ord-00000002", quantity=1, unit_price="10.00", event_time=DAY1),
        event(4, order_id="ord-00000002", quantity=1, unit_price="10.00", status="cancelled", event_time=DAY1),
        event(
            5,
            order_id="ord-00000003",
            customer_id="cus-000002",
            product_id="prd-00002",
            quantity=3,
            unit_price="7.50",
            currency="USD",
            event_time=DAY1,
        ),
        event(6, order_id="ord-00000004", customer_id="cus-000099", quantity=1, event_time=DAY1),  # not in CRM
    )


def test_daily_revenue_by_hand(settings, contracts, embedded):
    _day_one(settings, contracts, embedded)
    rows = _build(settings, embedded, "daily_revenue", ["2026-11-01"])
    day = dt.date(2026, 11, 1)
    assert rows == [
        {
            "event_date": day,
            "country": "DE",
            "category": "kitchen",
            "currency": "EUR",
            "orders": 2,
            "units": 3,
            "gross_revenue": Decimal("30.00"),
            "cancelled_amount": Decimal("10.00"),
            "refunded_amount": Decimal("0.00"),
            "net_revenue": Decimal("20.00"),
        },
        {
            "event_date": day,
            "country": "US",
            "category": "books",
            "currency": "USD",
            "orders": 1,
            "units": 3,
            "gross_revenue": Decimal("22.50"),
            "cancelled_amount": Decimal("0.00"),
            "refunded_amount": Decimal("0.00"),
            "net_revenue": Decimal("22.50"),
        },
        {
            "event_date": day,
            "country": "unknown",
            "category": "kitchen",
            "currency": "EUR",
            "orders": 1,
            "units": 1,
            "gross_revenue": Decimal("10.00"),
            "cancelled_amount": Decimal("0.00"),
            "refunded_amount": Decimal("0.00"),
            "net_revenue": Decimal("10.00"),
        },
    ]


def test_customer_lifetime_by_hand_without_pii(settings, contracts, embedded):
    _day_one(settings, contracts, embedded)
    rows = _build(settings, embedded, "customer_lifetime", None)
    assert [(r["customer_id"], r["country"], r["segment"], r["orders"], r["units"]) for r in rows] == [
        ("cus-000001", "DE", "smb", 2, 3),
        ("cus-000002", "US", "consumer", 1, 3),
        ("cus-000099", "unknown", "unknown", 1, 1),
    ]
    ana = rows[0]
    assert ana["net_revenue_eur"] == Decimal("20.00") and ana["net_revenue_usd"] == Decimal("0.00")
    assert ana["first_order_at"] == dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
    assert "email" not in rows[0] and "name" not in rows[0]


def test_product_performance_by_hand(settings, contracts, embedded):
    _day_one(settings, contracts, embedded)
    rows = _build(settings, embedded, "product_performance", ["2026-11-01"])
    kettle, novel = rows
    assert (kettle["product_id"], kettle["orders_placed"], kettle["orders_cancelled"], kettle["units"]) == (
        "prd-00001",
        3,
        1,
        4,
    )
    assert kettle["revenue_eur"] == Decimal("40.00") and kettle["cancellation_rate"] == 1 / 3
    assert (novel["units"], novel["revenue_usd"], novel["cancellation_rate"]) == (3, Decimal("22.50"), 0.0)


def test_late_events_rebuild_only_the_dates_they_touch(settings, contracts, embedded):
    _day_one(settings, contracts, embedded)
    _events(settings, contracts, embedded, "2026/11/02/08/b", event(20, event_time="2026-11-02T07:00:00Z"))
    _build(settings, embedded, "daily_revenue", ["2026-11-01", "2026-11-02"])
    target = settings.table_uri("refined", "daily_revenue")
    from deltalake import DeltaTable

    before = DeltaTable(target)
    day2_files = {a for a in before.file_uris() if "event_date=2026-11-02" in a}

    # Three days later an event from 11-01 arrives.
    late = _events(
        settings, contracts, embedded, "2026/11/04/09/c", event(21, quantity=5, event_time="2026-11-01T20:00:00Z")
    )
    assert late.touched_partitions == ["2026-11-01"]
    _build(settings, embedded, "daily_revenue", late.touched_partitions)
    after = DeltaTable(target)
    assert after.version() == before.version() + 1
    assert {a for a in after.file_uris() if "event_date=2026-11-02" in a} == day2_files  # untouched
    de = after.to_pyarrow_dataset().to_table(
        filter=(ds.field("country") == "DE") & (ds.field("event_date") == dt.date(2026, 11, 1))
    )
    assert de.column("units").to_pylist() == [3 + 5]
    assert after.to_pyarrow_table().num_rows == before.to_pyarrow_table().num_rows


def test_customer_lifetime_folds_in_new_events_and_rebuilds_on_crm_changes(settings, contracts, embedded, lake):
    from medallion_platform.zones.refined.base import refresh_refined

    table = TABLES["customer_lifetime"]
    _day_one(settings, contracts, embedded)
    assert refresh_refined(lake, embedded, table, None).mode == "rebuild"
    assert refresh_refined(lake, embedded, table, None).mode == "unchanged"

    _events(
        settings,
        contracts,
        embedded,
        "2026/11/02/08/b",
        event(30, order_id="ord-00000030", quantity=4, event_time="2026-10-30T07:00:00Z"),  # a late, earlier order
        event(31, order_id="ord-00000031", customer_id="cus-000002", quantity=1, event_time="2026-11-02T07:00:00Z"),
        event(32, order_id="ord-00000032", customer_id="cus-000077", quantity=2, event_time="2026-11-02T08:00:00Z"),
    )
    refreshed = refresh_refined(lake, embedded, table, None)
    assert refreshed.mode == "incremental"
    incremental = _rows_of(settings, "customer_lifetime")
    rebuilt = sorted(build_refined(lake, embedded, table, None).to_pylist(), key=lambda r: r["customer_id"])
    assert incremental == rebuilt  # folding new events in gives exactly what a rebuild gives
    ana = next(r for r in incremental if r["customer_id"] == "cus-000001")
    assert (ana["orders"], ana["units"]) == (3, 7)
    assert ana["first_order_at"] == dt.datetime(2026, 10, 30, 7, tzinfo=dt.UTC)

    customers_export(
        settings, contracts, embedded, "2026/11/03/c.csv", "cus-000077,Cem,cem@example.com,TR,smb,2026-11-03T00:00:00Z"
    )
    assert refresh_refined(lake, embedded, table, None).mode == "rebuild"  # the CRM changed
    cem = next(r for r in _rows_of(settings, "customer_lifetime") if r["customer_id"] == "cus-000077")
    assert (cem["country"], cem["segment"], cem["orders"]) == ("TR", "smb", 1)


def _rows_of(settings, name):
    from medallion_platform.lake.delta_io import DeltaTableIO

    rows = DeltaTableIO(settings.table_uri("refined", name)).read().to_pylist()
    return sorted(rows, key=lambda r: r["customer_id"])


def test_each_refresh_reads_only_the_fact_files_of_what_it_builds(settings, contracts, embedded, lake):
    """Dated tables read the trusted files of their dates only; customer_lifetime reads the files of the new
    events only. Counted from what the engine is handed (the pruning), and the rows equal a full rebuild."""
    _day_one(settings, contracts, embedded)  # 2026-11-01
    for n, day in enumerate((2, 3, 4)):
        when = f"2026-11-0{day}T09:00:00Z"
        _events(settings, contracts, embedded, f"2026/11/0{day}/10/x", event(40 + n, event_time=when))
    fact = lake.trusted("order_events")
    files = fact.files()
    assert files is not None and {f.value("event_date") for f in files} == {f"2026-11-0{d}" for d in (1, 2, 3, 4)}
    lifetime = TABLES["customer_lifetime"]
    assert refresh_refined(lake, embedded, lifetime, None).files_read == len(files)  # first build: everything

    for name in ("daily_revenue", "product_performance"):
        result = refresh_refined(lake, embedded, TABLES[name], ["2026-11-03"])
        assert (result.dates, result.files_read) == (1, len(fact.files("event_date", ["2026-11-03"]) or []))
        assert result.files_read == 1 < len(files)
        stored = DeltaTableIO(settings.table_uri("refined", name)).read().to_pylist()
        assert {r["event_date"] for r in stored} == {dt.date(2026, 11, 3)}

    before = fact.version()
    late = _events(
        settings, contracts, embedded, "2026/11/05/10/y", event(50, event_time="2026-11-02T09:00:00Z"), event(51)
    )
    assert late.touched_partitions == ["2026-11-01", "2026-11-02"]
    changes = fact.changes_since(before or 0)
    assert changes is not None and changes.inserts_only
    refreshed = refresh_refined(lake, embedded, lifetime, None)
    assert (refreshed.mode, refreshed.files_read) == ("incremental", len(changes.added))
    assert refreshed.files_read == 2 < len(fact.files() or [])
    rebuilt = sorted(build_refined(lake, embedded, lifetime, None).to_pylist(), key=lambda r: r["customer_id"])
    assert _rows_of(settings, "customer_lifetime") == rebuilt


def test_customer_lifetime_folds_new_events_in_without_a_change_data_feed(settings, contracts, embedded, lake):
    """A trusted table without a change data feed (made by an engine that has none): still incremental."""
    _master_data(settings, contracts, embedded)
    # trusted/order_events made first without the feed's table property
    DeltaTableIO(settings.table_uri("trusted", "order_events")).append(
        build_refined_input_rows(contracts), partition_by=["event_date"]
    )
    assert "delta.enableChangeDataFeed" not in (lake.trusted("order_events").table().metadata().configuration or {})
    table = TABLES["customer_lifetime"]
    assert refresh_refined(lake, embedded, table, None).mode == "rebuild"
    _events(settings, contracts, embedded, "2026/11/02/08/b", event(60, customer_id="cus-000002", quantity=3))
    refreshed = refresh_refined(lake, embedded, table, None)
    assert (refreshed.mode, refreshed.files_read) == ("incremental", 1)
    rebuilt = sorted(build_refined(lake, embedded, table, None).to_pylist(), key=lambda r: r["customer_id"])
    assert _rows_of(settings, "customer_lifetime") == rebuilt
    ben = next(r for r in rebuilt if r["customer_id"] == "cus-000002")
    assert (ben["orders"], ben["units"]) == (2, 5)


def build_refined_input_rows(contracts):
    """One trusted order event (customer cus-000002, 2 units), in trusted's schema."""
    import pyarrow as pa

    from medallion_platform.lake.schema import trusted_schema

    schema = trusted_schema(contracts["order_events"])
    row = {
        "event_id": "evt-00000000000000ff",
        "order_id": "ord-00000255",
        "customer_id": "cus-000002",
        "product_id": "prd-00001",
        "quantity": 2,
        "unit_price": Decimal("10.00"),
        "currency": "EUR",
        "status": "placed",
        "event_time": dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC),
        "event_date": dt.date(2026, 11, 1),
        "_source_file": "elsewhere",
        "_source_line": 1,
        "_ingested_at": dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC),
        "_batch_seq": 0,
        "_landing_date": "2026-11-01",
    }
    return pa.Table.from_pylist([row], schema=schema)


def test_a_master_data_commit_after_the_inputs_were_loaded_is_joined_or_left_pending_never_lost(
    settings, contracts, embedded, lake
):
    """The IO manager loads a refined step's inputs before the step plans; a customers commit landing in between
    must not be recorded as joined while the rows joined the older customers (the next refresh would then see
    nothing to do, and the rows would stay stale)."""
    from medallion_platform.write.persist import persist
    from medallion_platform.zones.entries import refined_entry
    from medallion_platform.zones.refined.base import input_frame, plan_refresh

    table = TABLES["customer_lifetime"]
    _day_one(settings, contracts, embedded)
    refresh_refined(lake, embedded, table, None)
    loaded = {name: input_frame(lake, embedded, name, None) for name in table.inputs}  # what the IO manager hands in
    ana = "cus-000001,Ana,ana@example.com,DE,enterprise,2026-11-02T00:00:00Z"
    customers_export(settings, contracts, embedded, "2026/11/02/c.csv", ana)

    plan = plan_refresh(lake, embedded, table, None, loaded)
    plan.write.entry = refined_entry(table)
    persist(lake, ("refined", table.name), plan.write)
    refresh_refined(lake, embedded, table, None)  # the next run: anything left pending is built now

    stored = _rows_of(settings, "customer_lifetime")
    assert stored == sorted(build_refined(lake, embedded, table, None).to_pylist(), key=lambda r: r["customer_id"])
    assert next(r for r in stored if r["customer_id"] == "cus-000001")["segment"] == "enterprise"
