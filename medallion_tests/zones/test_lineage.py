"""Column lineage derived from the transform plans (`zones/lineage.py`): one test per refined table, one for
trusted, and the Dagster metadata the assets publish."""

import dagster as dg

from medallion_platform.defs.assets.common import column_lineage
from medallion_platform.defs.keys import trusted_key
from medallion_platform.zones.lineage import reaches, refined_lineage, trusted_lineage
from medallion_platform.zones.refined import REFINED_TABLES

EVENTS = "order_events"
AMOUNT = ((EVENTS, "quantity"), (EVENTS, "status"), (EVENTS, "unit_price"))
CONVERTED = ((EVENTS, "currency"), *AMOUNT)


def test_daily_revenue_lineage():
    assert refined_lineage("daily_revenue") == {
        "event_date": ((EVENTS, "event_date"),),
        "country": (("customers", "country"),),
        "category": (("products", "category"),),
        "currency": ((EVENTS, "currency"),),
        "orders": ((EVENTS, "order_id"), (EVENTS, "status")),
        "units": ((EVENTS, "quantity"), (EVENTS, "status")),
        "gross_revenue": AMOUNT,
        "cancelled_amount": AMOUNT,
        "refunded_amount": AMOUNT,
        "net_revenue": AMOUNT,
    }


def test_customer_lifetime_lineage():
    assert refined_lineage("customer_lifetime") == {
        "customer_id": ((EVENTS, "customer_id"),),
        "country": (("customers", "country"),),
        "segment": (("customers", "segment"),),
        "first_order_at": ((EVENTS, "event_time"), (EVENTS, "status")),
        "last_order_at": ((EVENTS, "event_time"), (EVENTS, "status")),
        "orders": ((EVENTS, "status"),),
        "units": ((EVENTS, "quantity"), (EVENTS, "status")),
        "net_revenue_eur": CONVERTED,
        "net_revenue_usd": CONVERTED,
        "net_revenue_gbp": CONVERTED,
    }


def test_product_performance_lineage():
    assert refined_lineage("product_performance") == {
        "event_date": ((EVENTS, "event_date"),),
        "product_id": ((EVENTS, "product_id"),),
        "category": (("products", "category"),),
        "orders_placed": ((EVENTS, "order_id"), (EVENTS, "status")),
        "orders_cancelled": ((EVENTS, "order_id"), (EVENTS, "status")),
        "units": ((EVENTS, "quantity"), (EVENTS, "status")),
        "revenue_eur": CONVERTED,
        "revenue_usd": CONVERTED,
        "revenue_gbp": CONVERTED,
        "cancellation_rate": ((EVENTS, "order_id"), (EVENTS, "status")),
    }


def test_segment_revenue_lineage():
    """The segment comes from the customer's version in the history, not from trusted customers."""
    assert refined_lineage("segment_revenue") == {
        "event_date": ((EVENTS, "event_date"),),
        "segment": (("customers_history", "segment"),),
        "currency": ((EVENTS, "currency"),),
        "orders": ((EVENTS, "order_id"),),
        "units": ((EVENTS, "quantity"),),
        "gross_revenue": ((EVENTS, "quantity"), (EVENTS, "unit_price")),
    }


def test_every_refined_table_has_its_lineage_tested():
    assert {t.name for t in REFINED_TABLES} == {
        "daily_revenue",
        "customer_lifetime",
        "product_performance",
        "segment_revenue",
    }


def test_trusted_lineage_reads_each_raw_column_and_the_partition_its_timestamp(contracts):
    lineage = trusted_lineage(contracts[EVENTS])
    assert lineage["event_date"] == (("raw", "event_time"),)
    assert all(lineage[c.name] == (("raw", c.name),) for c in contracts[EVENTS].columns)


def test_reaches_lists_the_refined_columns_a_trusted_column_feeds():
    assert reaches("customers", "segment") == ("customer_lifetime.segment",)
    assert reaches("products", "category") == ("daily_revenue.category", "product_performance.category")
    assert reaches("customers", "email") == ()
    assert reaches("customers", None) == (  # a whole-table change: every refined column computed from it
        "daily_revenue.country",
        "customer_lifetime.country",
        "customer_lifetime.segment",
    )


def test_published_as_dagster_column_lineage():
    metadata = column_lineage(refined_lineage("daily_revenue"), trusted_key)
    assert isinstance(metadata, dg.TableColumnLineage)
    assert metadata.deps_by_column["country"] == [
        dg.TableColumnDep(asset_key=dg.AssetKey(["trusted", "customers"]), column_name="country")
    ]
