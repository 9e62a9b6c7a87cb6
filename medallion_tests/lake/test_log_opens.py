"""A write opens its table's Delta log once, and a source step opens each table's log a bounded number
of times (each `exists`, `version` and `transaction_version` used to open it afresh: trusted's log was
opened 11 times in one Dagster source step, 4 times now)."""

from collections import Counter

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from medallion_platform.engine import EmbeddedEngine
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.zones.flow import ingest_and_promote
from medallion_tests.helpers import event, jsonl, land


@pytest.fixture
def opens(monkeypatch) -> Counter:
    """DeltaTable opens by table (the path below the lake's data directory)."""
    counted: Counter = Counter()
    original = DeltaTable.__init__

    def counting(self, table_uri, *args, **kwargs):
        counted[str(table_uri).rstrip("/").split("/lake/")[-1]] += 1
        original(self, table_uri, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "__init__", counting)
    return counted


def test_a_write_opens_the_log_once_and_reads_its_own_commit(tmp_path, opens):
    table = DeltaTableIO(str(tmp_path / "lake" / "t"))
    rows = pa.table({"id": [1, 2]})
    assert table.append(rows, txns={"app": 0}).version == 0
    opens.clear()
    written = table.append(rows, txns={"app": 1})
    assert (written.version, written.inserted, opens["t"]) == (1, 2, 1)
    opens.clear()
    again = table.append(rows, txns={"app": 1})  # a retry: skipped, told from the same opened log
    assert (again.skipped, again.version, opens["t"]) == (True, 1, 1)
    assert table.version() == 1 and table.transaction_version("app") == 1
    assert table.read().num_rows == 4


def test_a_source_step_opens_each_log_a_bounded_number_of_times(settings, contracts, lake, opens):
    contract = contracts["order_events"]
    land(settings, "order_events", "2026/11/01/00/a.jsonl", jsonl(event(1), event(2), event(2), {"event_id": ""}))
    engine = EmbeddedEngine()
    try:
        ingest_and_promote(lake, engine, contract)
        land(settings, "order_events", "2026/11/02/00/b.jsonl", jsonl(event(3), event(1), {"event_id": ""}))
        opens.clear()
        raw, promoted = ingest_and_promote(lake, engine, contract)
    finally:
        engine.close()
    assert (raw.rows, promoted.inserted, promoted.quarantined, promoted.reconciled) == (3, 1, 1, True)
    # trusted and quarantine: once to plan the promotion, once to write; raw: the survey, the plan, the write
    assert opens["trusted/order_events"] == 2, opens
    assert opens["trusted/order_events_quarantine"] == 2, opens
    assert opens["raw/order_events"] == 3, opens


def test_a_refined_refresh_opens_each_log_a_bounded_number_of_times(settings, contracts, embedded, lake, opens):
    """A refresh plans from one snapshot of each table it reads (`Lakehouse.held`): the master data once, the
    fact once (the current version's files come from the open log; only the older version its coverage
    recorded is opened again, once per process, and this process has read it before), the refined table once
    (delta-rs's writer commits on the open log) (8, 4, 4 and 6 openings without the held snapshot)."""
    from medallion_tests.zones.test_refined import TABLES, _day_one, _events

    _day_one(settings, contracts, embedded)
    from medallion_platform.zones.refined.base import refresh_refined

    refresh_refined(lake, embedded, TABLES["daily_revenue"], ["2026-11-01"])
    _events(
        settings,
        contracts,
        embedded,
        "2026/11/03/10/late",
        event(30, order_id="ord-00000030", quantity=4, event_time="2026-11-01T20:00:00Z"),
    )
    opens.clear()
    refreshed = refresh_refined(lake, embedded, TABLES["daily_revenue"], ["2026-11-01"])
    assert (refreshed.mode, refreshed.folded) == ("incremental", 1)
    assert {name: opens[name] for name in opens if not name.startswith("_")} == {
        "trusted/order_events": 1,
        "trusted/customers": 1,
        "trusted/products": 1,
        "refined/daily_revenue": 1,
    }, opens
