"""Pending refined dates from the Delta logs: what the fact input holds that a refined table was not built from."""

import datetime as dt
from pathlib import Path

import pyarrow as pa

from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.delta_reads import _files_at
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.coverage import coverage_metadata, inputs_missing, pending_dates, read_coverage

DAILY_REVENUE = next(t for t in REFINED_TABLES if t.name == "daily_revenue")
LIFETIME = next(t for t in REFINED_TABLES if not t.partitioned)


def _events(*days: int) -> pa.Table:
    dates = [dt.date(2026, 11, d) for d in days]
    return pa.table({"event_id": [f"e{d}-{i}" for i, d in enumerate(days)], "event_date": dates})


def _land(lake: Lakehouse, *days: int) -> None:
    lake.trusted("order_events").append(_events(*days), partition_by=["event_date"])


def _build(lake: Lakehouse, *days: int) -> None:
    """What a refined run writes: a partition overwrite of `days` with the coverage record."""
    dates = [dt.date(2026, 11, d).isoformat() for d in days]
    lake.refined(DAILY_REVENUE.name).overwrite_partitions(
        _events(*days),
        partition_column="event_date",
        values=[dt.date.fromisoformat(d) for d in dates],
        metadata=coverage_metadata(lake, DAILY_REVENUE, dates),
    )


def test_a_missing_table_is_pending_for_every_date_its_fact_holds(lake: Lakehouse):
    assert pending_dates(lake, DAILY_REVENUE) == []  # no fact yet: nothing to build
    _land(lake, 1, 2, 2, 3)
    assert pending_dates(lake, DAILY_REVENUE) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert pending_dates(lake, LIFETIME) == []  # unpartitioned tables follow their txn versions instead


def test_built_dates_leave_the_list_and_new_fact_rows_bring_back_only_their_dates(lake: Lakehouse):
    _land(lake, 1, 2, 3)
    _build(lake, 1, 2, 3)
    assert pending_dates(lake, DAILY_REVENUE) == []
    _land(lake, 2)  # a late event
    _land(lake, 5)
    assert pending_dates(lake, DAILY_REVENUE) == ["2026-11-02", "2026-11-05"]


def test_dates_a_run_did_not_build_stay_pending_across_later_runs(lake: Lakehouse):
    """A run killed or failed before a date was built: the next runs still see it."""
    _land(lake, 1, 2, 3)
    _build(lake, 2)  # only one date built (the UI, one partition)
    assert pending_dates(lake, DAILY_REVENUE) == ["2026-11-01", "2026-11-03"]
    _land(lake, 4)
    _build(lake, 4)
    assert pending_dates(lake, DAILY_REVENUE) == ["2026-11-01", "2026-11-03"]
    covered = read_coverage(lake.refined(DAILY_REVENUE.name))
    assert covered is not None and covered.version == lake.trusted("order_events").version()


def test_a_maintenance_commit_keeps_the_record(lake: Lakehouse):
    _land(lake, 1)
    _build(lake, 1)
    _build(lake, 1)
    table = lake.refined(DAILY_REVENUE.name).table()
    assert table is not None
    table.optimize.compact()  # a commit without the record
    assert pending_dates(lake, DAILY_REVENUE) == []


def test_a_table_waits_for_its_master_data(lake: Lakehouse):
    _land(lake, 1)
    assert inputs_missing(lake, DAILY_REVENUE) == ["trusted/customers", "trusted/products"]


def test_pending_dates_need_no_change_data_feed(lake: Lakehouse):
    """Engines and tables without a change data feed (Spark Connect, a table made elsewhere): the dates come
    from the Delta logs of the two versions, exactly as with the feed."""
    fact = DeltaTableIO(lake.trusted("order_events").uri)  # no table properties: no change data feed
    fact.append(_events(1, 2, 3), partition_by=["event_date"])
    assert "delta.enableChangeDataFeed" not in (fact.table().metadata().configuration or {})  # type: ignore[union-attr]
    _build(lake, 1, 2, 3)
    fact.append(_events(2, 6), partition_by=["event_date"])
    assert pending_dates(lake, DAILY_REVENUE) == ["2026-11-02", "2026-11-06"]


def test_pending_dates_cost_the_files_of_the_changed_versions_not_their_rows(lake: Lakehouse):
    """What changed comes from the two versions' file lists: a batch of many rows on one date is one file."""
    fact = lake.trusted("order_events")
    _land(lake, 1, 2)
    _build(lake, 1, 2)
    built = fact.version()
    assert built is not None
    fact.append(_events(*[4] * 5000), partition_by=["event_date"])
    changes = fact.changes_since(built)
    assert changes is not None and changes.inserts_only
    assert [(f.value("event_date"), f.rows) for f in changes.added] == [("2026-11-04", 5000)]
    assert pending_dates(lake, DAILY_REVENUE) == ["2026-11-04"]


def test_a_gone_version_makes_every_date_pending(lake: Lakehouse):
    """The recorded fact version's log is gone (log retention): nothing can say what changed, so every date."""
    _land(lake, 1, 2)
    _build(lake, 1, 2)  # from version 0
    _land(lake, 3)
    _land(lake, 4)
    fact = lake.trusted("order_events").table()
    assert fact is not None
    fact.create_checkpoint()  # version 2: its log no longer needs the commits before it
    log = Path(lake.trusted("order_events").uri.removeprefix("file://"), "_delta_log")
    for version in (0, 1):
        (log / f"{version:020d}.json").unlink()
    _files_at.cache_clear()  # as a new process finds it (a version once read is kept per process)
    assert pending_dates(lake, DAILY_REVENUE) == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
