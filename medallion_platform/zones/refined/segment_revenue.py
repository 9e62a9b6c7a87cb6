"""segment_revenue: orders placed per event date x customer segment *as it was when the order was placed*
x currency: a point-in-time join of the orders with `trusted/customers_history`."""

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.zones.refined.model import AMOUNT, MONEY, PLACED, RefinedTable, Tally, amount

SCHEMA = pa.schema(
    [
        ("event_date", pa.date32()),
        ("segment", pa.string()),
        ("currency", pa.string()),
        ("orders", pa.int64()),
        ("units", pa.int64()),
        ("gross_revenue", MONEY),
    ]
)


def build(engine: Engine, order_events: Frame, customers_history: Frame) -> Frame:
    """Orders, units and gross revenue placed, by event date and the customer's segment at the order's time.

    Each placed event takes the segment of the customer's version that held at its `event_time`
    (`valid_from <= event_time < valid_to`, the current version open-ended): a customer who moved from
    consumer to smb counts under consumer for the orders placed before the move. Orders placed while the
    CRM did not know the customer (before the first version, or while deleted) count under `unknown`.
    """
    F = engine.F
    versions = customers_history.where(~F.col("is_deleted")).select(
        F.col("customer_id").alias("__customer"),
        F.col("segment").alias("__segment"),
        F.col("valid_from").alias("__from"),
        F.col("valid_to").alias("__to"),
    )
    placed = order_events.where(F.col("status") == F.lit("placed")).select(
        "event_date", "customer_id", "event_time", "currency", "order_id", "quantity", amount(F).alias("amount")
    )
    at_the_time = (
        (F.col("customer_id") == F.col("__customer"))
        & (F.col("__from") <= F.col("event_time"))
        & (F.col("__to").isNull() | (F.col("event_time") < F.col("__to")))
    )
    joined = placed.join(versions, on=at_the_time, how="left").select(
        "event_date",
        F.coalesce(F.col("__segment"), F.lit("unknown")).alias("segment"),
        "currency",
        "order_id",
        "quantity",
        "amount",
    )
    return joined.groupBy("event_date", "segment", "currency").agg(
        F.countDistinct(F.col("order_id")).cast("bigint").alias("orders"),
        F.coalesce(F.sum(F.col("quantity")), F.lit(0)).cast("bigint").alias("units"),
        F.coalesce(F.sum(F.col("amount")), F.lit(0)).cast("decimal(18,2)").alias("gross_revenue"),
    )


MEASURES = ("orders", "units", "gross_revenue")
KEY = ("event_date", "segment", "currency")


def combine(engine: Engine, stored: Frame, partial: Frame, **master_data: Frame) -> Frame:
    """Folds the figures of a date's new events (`partial`, from `build`) into its stored rows: units and
    revenue are sums, and `orders` a distinct count the refresh folds only when the new events repeat no
    order already counted that date (`counted_once`), so the result equals a rebuild of the date. The
    segment is in the key, resolved from the same customers history on both sides (a fold requires the
    history version the stored rows joined)."""
    F = engine.F
    both = stored.select(*KEY, *MEASURES).union(partial.select(*KEY, *MEASURES))
    return both.groupBy(*KEY).agg(
        F.sum("orders").cast("bigint").alias("orders"),
        F.sum("units").cast("bigint").alias("units"),
        F.sum("gross_revenue").cast("decimal(18,2)").alias("gross_revenue"),
    )


TABLE = RefinedTable(
    name="segment_revenue",
    description=(build.__doc__ or "segment_revenue").split("\n")[0],
    owner="team:commerce-data",
    inputs=("order_events", "customers_history"),
    schema=SCHEMA,
    build=build,
    key=KEY,
    columns={
        "event_date": "Date the orders were placed (UTC)",
        "segment": "The customer's CRM segment when the order was placed (`unknown`: not known to the CRM then)",
        "currency": "ISO 4217 currency of the orders",
        "orders": "Orders placed (placed events)",
        "units": "Units placed",
        "gross_revenue": "Placed amounts (quantity x unit price)",
    },
    non_negative=("orders", "units", "gross_revenue"),
    tallies=(
        Tally("gross_revenue", "sum(gross_revenue)", f"sum({AMOUNT}) FILTER (WHERE {PLACED})"),
        Tally("units", "sum(units)", f"sum(quantity) FILTER (WHERE {PLACED})"),
        Tally("orders", "sum(orders)", f"count(DISTINCT order_id) FILTER (WHERE {PLACED})"),
    ),
    combine=combine,
    counted_once=("status", "order_id"),
)
