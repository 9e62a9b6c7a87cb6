"""Dated refined tables fold late events into their stored dates, and the rows equal a rebuild's."""

import datetime as dt

import pytest

from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import conform
from medallion_platform.write.persist import persist
from medallion_platform.zones.entries import refined_entry
from medallion_platform.zones.refined.base import build_refined, plan_refresh, refresh_refined
from medallion_platform.zones.refined.coverage import pending_dates
from medallion_tests.helpers import event
from medallion_tests.zones.test_refined import (
    TABLES,
    _day_one,
    _events,
    _master_data,
    build_refined_input_rows,
    customers_export,
)

DATED = ("daily_revenue", "product_performance", "segment_revenue")
DAY1, DAY2 = "2026-11-01", "2026-11-02"


def _stored(lake: Lakehouse, name: str) -> list[dict]:
    rows = DeltaTableIO(lake.refined(name).uri).read()
    assert rows is not None
    return sorted(rows.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


def _rebuilt(lake: Lakehouse, engine, name: str, dates: list[str]) -> list[dict]:
    rows = build_refined(lake, engine, TABLES[name], dates).to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def test_late_events_fold_into_the_stored_date_and_the_rows_equal_a_rebuild(settings, contracts, embedded, lake):
    _day_one(settings, contracts, embedded)
    for name in DATED:
        assert refresh_refined(lake, embedded, TABLES[name], [DAY1]).mode == "rebuild"  # nothing stored yet
    late = _events(
        settings,
        contracts,
        embedded,
        "2026/11/03/10/late",
        event(30, order_id="ord-00000030", quantity=4, event_time="2026-11-01T20:00:00Z"),  # a new order
        event(31, order_id="ord-00000001", status="cancelled", event_time="2026-11-01T21:00:00Z"),  # one stored
        event(32, order_id="ord-00000032", product_id="prd-00002", currency="USD", unit_price="7.50"),
        event(33, order_id="ord-00000033", event_time="2026-11-02T08:00:00Z"),  # a new date
    )
    assert late.touched_partitions == [DAY1, DAY2]
    added = lake.trusted("order_events").files("event_date", [DAY1])
    for name in DATED:
        refreshed = refresh_refined(lake, embedded, TABLES[name], [DAY1, DAY2])
        # 11-01: only the file the batch added, into the stored rows; 11-02 (not stored): rebuilt from its file
        assert (refreshed.mode, refreshed.dates, refreshed.folded) == ("incremental", 2, 1), name
        assert (refreshed.files_read, refreshed.files_probed) == (2, len(added or []) - 1), name
        assert _stored(lake, name) == _rebuilt(lake, embedded, name, [DAY1, DAY2]), name
    kettle = next(
        r
        for r in _stored(lake, "product_performance")
        if r["product_id"] == "prd-00001" and r["event_date"] == dt.date(2026, 11, 1)
    )
    assert (kettle["orders_placed"], kettle["orders_cancelled"], kettle["units"]) == (4, 2, 8)
    assert pending_dates(lake, TABLES["daily_revenue"]) == []


def test_a_late_event_repeating_a_counted_order_rebuilds_its_date(settings, contracts, embedded, lake):
    """`orders` counts distinct orders: a second placed event of a stored order must not count it twice."""
    _day_one(settings, contracts, embedded)
    for name in DATED:
        refresh_refined(lake, embedded, TABLES[name], [DAY1])
    _events(
        settings,
        contracts,
        embedded,
        "2026/11/03/10/again",
        event(40, order_id="ord-00000001", quantity=1, event_time="2026-11-01T22:00:00Z"),  # placed again
    )
    for name in DATED:
        refreshed = refresh_refined(lake, embedded, TABLES[name], [DAY1])
        assert (refreshed.mode, refreshed.folded) == ("rebuild", 0), name
        assert refreshed.files_probed == 1, name  # the older file, read for (status, order_id) only
        assert _stored(lake, name) == _rebuilt(lake, embedded, name, [DAY1]), name
    de = next(r for r in _stored(lake, "daily_revenue") if r["country"] == "DE")
    assert (de["orders"], de["units"]) == (2, 4)


def test_changed_master_data_rebuilds_the_dates_instead_of_folding(settings, contracts, embedded, lake):
    """Stored rows joined the CRM as it was: a late event after a CRM change rebuilds its date, so every
    row of the date takes the current country, as a rebuild gives."""
    _day_one(settings, contracts, embedded)
    for name in DATED:
        refresh_refined(lake, embedded, TABLES[name], [DAY1])
    customers_export(
        settings, contracts, embedded, "2026/11/02/c.csv", "cus-000001,Ana,ana@example.com,AT,smb,2026-11-02T00:00:00Z"
    )
    _events(settings, contracts, embedded, "2026/11/03/10/c", event(50, event_time="2026-11-01T23:00:00Z"))
    refreshed = refresh_refined(lake, embedded, TABLES["daily_revenue"], [DAY1])
    assert (refreshed.mode, refreshed.folded) == ("rebuild", 0)
    assert _stored(lake, "daily_revenue") == _rebuilt(lake, embedded, "daily_revenue", [DAY1])
    assert "DE" not in {r["country"] for r in _stored(lake, "daily_revenue")}

    # from now on the date was built with the current CRM: the next late event folds again
    _events(settings, contracts, embedded, "2026/11/04/10/d", event(51, event_time="2026-11-01T23:30:00Z"))
    refreshed = refresh_refined(lake, embedded, TABLES["daily_revenue"], [DAY1])
    assert (refreshed.mode, refreshed.folded) == ("incremental", 1)
    assert _stored(lake, "daily_revenue") == _rebuilt(lake, embedded, "daily_revenue", [DAY1])


def test_dated_tables_fold_without_a_change_data_feed(settings, contracts, embedded, lake):
    """A trusted table made by an engine without a change data feed: the fold still finds the new files."""
    _master_data(settings, contracts, embedded)
    DeltaTableIO(settings.table_uri("trusted", "order_events")).append(
        build_refined_input_rows(contracts), partition_by=["event_date"]
    )
    assert "delta.enableChangeDataFeed" not in (lake.trusted("order_events").table().metadata().configuration or {})
    for name in DATED:
        refresh_refined(lake, embedded, TABLES[name], [DAY1])
    _events(settings, contracts, embedded, "2026/11/02/08/b", event(60, event_time="2026-11-01T12:00:00Z"))
    for name in DATED:
        refreshed = refresh_refined(lake, embedded, TABLES[name], [DAY1])
        assert (refreshed.mode, refreshed.folded, refreshed.files_read) == ("incremental", 1, 1), name
        assert refreshed.files_probed == 0, name  # the order ids of the two files do not overlap: the log tells
        assert _stored(lake, name) == _rebuilt(lake, embedded, name, [DAY1]), name


def test_a_trusted_commit_landing_mid_refresh_leaves_its_dates_pending(
    settings, contracts, embedded, lake, monkeypatch
):
    """The refresh reads one version of the fact; rows committed after it (while it plans, after the files
    are listed, or before its commit) are not in what it writes, so their dates stay pending and the next
    run builds them, folded or rebuilt, to what a rebuild gives."""
    import medallion_platform.zones.refined.base as base

    _day_one(settings, contracts, embedded)
    _events(settings, contracts, embedded, "2026/11/02/10/b", event(70, event_time="2026-11-02T09:00:00Z"))
    table = TABLES["daily_revenue"]
    refresh_refined(lake, embedded, table, [DAY1, DAY2])
    _events(settings, contracts, embedded, "2026/11/03/10/c", event(71, event_time="2026-11-01T22:00:00Z"))
    assert pending_dates(lake, table) == [DAY1]

    record = base.coverage_metadata

    def landing_meanwhile(*args, **kwargs):  # after the plan listed the fact's files, before the record
        _events(
            settings,
            contracts,
            embedded,
            "2026/11/03/11/d",
            event(72, event_time="2026-11-01T23:00:00Z"),
            event(73, event_time="2026-11-02T23:00:00Z"),
        )
        return record(*args, **kwargs)

    monkeypatch.setattr(base, "coverage_metadata", landing_meanwhile)
    plan = plan_refresh(lake, embedded, table, [DAY1, DAY2])  # folds 11-01, rebuilds 11-02
    monkeypatch.undo()
    assert (plan.mode, plan.folded) == ("incremental", 1)
    # and one more after the plan, before its commit
    _events(settings, contracts, embedded, "2026/11/03/12/e", event(74, event_time="2026-11-03T08:00:00Z"))
    plan.write.entry = refined_entry(table)
    persist(lake, ("refined", table.name), plan.write)
    assert pending_dates(lake, table) == [DAY1, DAY2, "2026-11-03"]

    dates = pending_dates(lake, table)
    refreshed = refresh_refined(lake, embedded, table, dates)
    assert (refreshed.folded, pending_dates(lake, table)) == (2, [])
    assert _stored(lake, table.name) == _rebuilt(lake, embedded, table.name, dates)


@pytest.mark.spark
def test_the_fold_gives_the_same_rows_on_spark(settings, contracts, embedded, spark_engine, lake):
    """The fold is written in the DataFrame API: on Spark it plans the same fold and gives a rebuild's rows."""
    _day_one(settings, contracts, embedded)
    for name in DATED:
        refresh_refined(lake, embedded, TABLES[name], [DAY1])
    _events(settings, contracts, embedded, "2026/11/03/10/s", event(80, quantity=3, event_time="2026-11-01T21:00:00Z"))
    for name in (*DATED, "customer_lifetime"):
        table = TABLES[name]
        dates = [DAY1] if table.partitioned else None
        if not table.partitioned:
            refresh_refined(lake, embedded, table, None)  # first build, before the late event's fold
            _events(settings, contracts, embedded, "2026/11/04/10/s", event(81, event_time="2026-11-02T21:00:00Z"))
        plan = plan_refresh(lake, spark_engine, table, dates)
        assert plan.mode == "incremental", name
        assert plan.write.frame is not None
        folded = conform(spark_engine.to_arrow(plan.write.frame), table.schema).to_pylist()
        rebuilt = build_refined(lake, embedded, table, dates).to_pylist()
        assert sorted(folded, key=str) == sorted(rebuilt, key=str), name
