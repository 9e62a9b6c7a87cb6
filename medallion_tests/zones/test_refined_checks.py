"""The refined checks pass on what the builds write, and each fails on a table broken on purpose."""

from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from medallion_platform.defs.checks.refined import refined_check_results
from medallion_platform.defs.keys import refined_key
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.flow import ingest_raw
from medallion_platform.zones.history import refresh_history
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.base import refresh_refined
from medallion_platform.zones.trusted import promote
from medallion_tests.helpers import event, jsonl, land

TABLES = {t.name: t for t in REFINED_TABLES}
DATES = ["2026-11-01", "2026-11-02"]


@pytest.fixture
def built(settings, contracts, embedded) -> Lakehouse:
    """Two customers, two products, events on two days, and every refined table built from them."""
    lake = Lakehouse(settings)
    land(
        settings,
        "customers",
        "2026/11/01/c.csv",
        "customer_id,name,email,country,segment,updated_at\n"
        "cus-000001,Ana,ana@example.com,DE,smb,2026-11-01T00:00:00Z\n"
        "cus-000002,Ben,ben@example.com,US,consumer,2026-11-01T00:00:00Z\n",
    )
    land(
        settings,
        "products",
        "2026/11/01/p.csv",
        "product_id,name,category,list_price,currency,active,updated_at\n"
        "prd-00001,Kettle,kitchen,10.00,EUR,true,2026-11-01T00:00:00Z\n"
        "prd-00002,Novel,books,7.50,USD,true,2026-11-01T00:00:00Z\n",
    )
    events = [
        event(1, quantity=2, unit_price="10.00"),
        event(2, order_id="ord-00000001", status="cancelled", quantity=2, unit_price="10.00"),
        event(3, customer_id="cus-000002", product_id="prd-00002", currency="USD", unit_price="7.50"),
        event(4, quantity=3, event_time="2026-11-02T08:00:00Z"),
    ]
    land(settings, "order_events", "2026/11/02/09/a", jsonl(*events))
    for name in ("customers", "products", "order_events"):
        ingest_raw(lake, contracts[name])
        promote(lake, embedded, contracts[name])
        if contracts[name].history is not None:  # segment_revenue reads the customers' history
            refresh_history(lake, embedded, contracts[name])
    for table in REFINED_TABLES:
        refresh_refined(lake, embedded, table, DATES if table.partitioned else None)
    return lake


def _results(lake: Lakehouse, name: str) -> dict[str, object]:
    table = TABLES[name]
    results = refined_check_results(lake, table, refined_key(name), DATES if table.partitioned else None)
    return {str(r.check_name): r for r in results}


def _rewrite(lake: Lakehouse, name: str, change) -> None:
    """Overwrites a refined table with `change(rows)` (a list of dicts), keeping its schema."""
    io = lake.refined(name)
    table = io.read()
    assert table is not None
    rows = change(table.to_pylist())
    write_deltalake(io.uri, pa.Table.from_pylist(rows, schema=table.schema), mode="overwrite")


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_check_passes_on_what_the_build_wrote(built, name):
    results = _results(built, name)
    assert set(results) == {"amounts_non_negative", "key_unique", "reconciles_with_fact"}
    assert all(r.passed for r in results.values()), {k: r.metadata for k, r in results.items()}


def test_a_negative_amount_fails_amounts_non_negative(built):
    def negative(rows):
        rows[0]["gross_revenue"] = Decimal("-1.00")
        return rows

    _rewrite(built, "daily_revenue", negative)
    result = _results(built, "daily_revenue")["amounts_non_negative"]
    assert not result.passed
    assert result.metadata["violations"].value == 1


def test_a_duplicated_key_fails_key_unique(built):
    _rewrite(built, "product_performance", lambda rows: [*rows, rows[0]])
    result = _results(built, "product_performance")["key_unique"]
    assert not result.passed
    assert result.metadata["duplicate_rows"].value == 1


def test_a_sum_that_disagrees_with_trusted_fails_the_reconciliation(built):
    def more_units(rows):
        rows[0]["units"] += 1
        return rows

    _rewrite(built, "customer_lifetime", more_units)
    result = _results(built, "customer_lifetime")["reconciles_with_fact"]
    assert not result.passed
    assert result.metadata["mismatched"].value == "units"
    figures = result.metadata["figures"].value
    assert figures["units"]["refined"] == str(int(figures["units"]["order_events"]) + 1)


def test_a_lost_row_fails_the_row_count_reconciliation(built):
    _rewrite(built, "product_performance", lambda rows: rows[1:])
    result = _results(built, "product_performance")["reconciles_with_fact"]
    assert not result.passed
    assert "rows" in result.metadata["mismatched"].value.split(",")


def test_reconciliation_figures_are_the_hand_computed_ones(built):
    figures = _results(built, "daily_revenue")["reconciles_with_fact"].metadata["figures"].value
    # placed: 2 x 10.00 + 1 x 7.50 + 3 x 10.00; net: minus the cancelled 2 x 10.00
    assert figures["gross_revenue"] == {"refined": "57.50", "order_events": "57.50"}
    assert figures["net_revenue"] == {"refined": "37.50", "order_events": "37.50"}
    assert figures["units"] == {"refined": "6", "order_events": "6"}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_trusted_commit_after_the_refresh_is_not_a_mismatch(built, settings, contracts, embedded, name):
    """A sensor's run racing a backfill: new events reach trusted between a refresh and its checks. The
    checks compare the table with the fact version it was built from, not with rows it has not seen."""
    before = built.trusted("order_events").version()
    land(settings, "order_events", "2026/11/02/10/late", jsonl(event(9, quantity=5, event_time="2026-11-01T12:00:00Z")))
    ingest_raw(built, contracts["order_events"])
    promote(built, embedded, contracts["order_events"])
    assert built.trusted("order_events").version() > before  # the late event is in trusted, not in refined
    results = _results(built, name)
    assert all(r.passed for r in results.values()), {k: r.metadata for k, r in results.items()}
    assert results["reconciles_with_fact"].metadata["fact_version"].value == before
