"""customer_lifetime: one row per customer who ordered. No PII: e-mail and name never reach refined."""

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.zones.refined.model import CURRENCIES, MONEY, PLACED, SIGNED_AMOUNT, RefinedTable, Tally, amount

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("country", pa.string()),
        ("segment", pa.string()),
        ("first_order_at", pa.timestamp("us", tz="UTC")),
        ("last_order_at", pa.timestamp("us", tz="UTC")),
        ("orders", pa.int64()),
        ("units", pa.int64()),
        *[(f"net_revenue_{c.lower()}", MONEY) for c in CURRENCIES],
    ]
)


def build(engine: Engine, order_events: Frame, customers: Frame) -> Frame:
    """First and last order, orders, units and net revenue per currency for each customer.

    Orders are counted by their `placed` event (one per order, deduplicated by event_id in trusted).
    Net revenue = placed - cancelled - refunded amounts. Country and segment come from the CRM
    (`unknown` for customers it does not know yet); e-mail and name are deliberately left out.
    """
    F = engine.F
    status = F.col("status")
    placed = status == F.lit("placed")
    sign = F.when(placed, F.lit(1)).when(status.isin("cancelled", "refunded"), F.lit(-1)).otherwise(F.lit(0))
    signed = amount(F) * sign
    grouped = order_events.groupBy("customer_id").agg(
        F.min(F.when(placed, F.col("event_time"))).alias("first_order_at"),
        F.max(F.when(placed, F.col("event_time"))).alias("last_order_at"),
        F.coalesce(F.sum(F.when(placed, F.lit(1))), F.lit(0)).cast("bigint").alias("orders"),
        F.coalesce(F.sum(F.when(placed, F.col("quantity"))), F.lit(0)).cast("bigint").alias("units"),
        *[
            F.coalesce(F.sum(F.when(F.col("currency") == F.lit(c), signed)), F.lit(0))
            .cast("decimal(18,2)")
            .alias(f"net_revenue_{c.lower()}")
            for c in CURRENCIES
        ],
    )
    return _with_master_data(engine, grouped, customers)


def combine(engine: Engine, stored: Frame, partial: Frame, **master_data: Frame) -> Frame:
    """Folds the figures of new events (`partial`, from `build`) into the stored rows: every measure
    is a min, max or sum, so the result equals a rebuild over all events. Both sides took country and
    segment from the same CRM data (a refresh folds only while the master data is unchanged), so the
    fold keeps them instead of joining the CRM again."""
    F = engine.F
    measures = ["first_order_at", "last_order_at", "orders", "units", *[f"net_revenue_{c.lower()}" for c in CURRENCIES]]
    columns = ["customer_id", "country", "segment", *measures]
    # the same columns in the same order on both sides: a positional union (unionByName costs more to plan)
    both = stored.select(*columns).union(partial.select(*columns))
    return both.groupBy("customer_id").agg(
        F.max("country").alias("country"),
        F.max("segment").alias("segment"),
        F.min("first_order_at").alias("first_order_at"),
        F.max("last_order_at").alias("last_order_at"),
        F.sum("orders").cast("bigint").alias("orders"),
        F.sum("units").cast("bigint").alias("units"),
        *[
            F.sum(f"net_revenue_{c.lower()}").cast("decimal(18,2)").alias(f"net_revenue_{c.lower()}")
            for c in CURRENCIES
        ],
    )


def _with_master_data(engine: Engine, grouped: Frame, customers: Frame) -> Frame:
    F = engine.F
    measures = [c for c in grouped.columns if c != "customer_id"]
    # one projection after the join (each DataFrame step costs a copy of the whole plan in SQLFrame)
    return grouped.join(customers.select("customer_id", "country", "segment"), on="customer_id", how="left").select(
        "customer_id",
        F.coalesce(F.col("country"), F.lit("unknown")).alias("country"),
        F.coalesce(F.col("segment"), F.lit("unknown")).alias("segment"),
        *measures,
    )


NET_REVENUE = [f"net_revenue_{c.lower()}" for c in CURRENCIES]

COLUMNS = {
    "customer_id": "Customer who ordered",
    "country": "Current CRM country (`unknown` if the CRM does not know the customer yet)",
    "segment": "Current CRM segment (`unknown` if the CRM does not know the customer yet)",
    "first_order_at": "Time of the customer's first placed event (UTC)",
    "last_order_at": "Time of the customer's latest placed event (UTC)",
    "orders": "Orders placed (placed events)",
    "units": "Units placed",
    **{f"net_revenue_{c.lower()}": f"Placed minus cancelled and refunded amounts in {c}" for c in CURRENCIES},
}

TABLE = RefinedTable(
    name="customer_lifetime",
    description=(build.__doc__ or "customer_lifetime").split("\n")[0],
    owner="team:commerce-data",
    inputs=("order_events", "customers"),
    schema=SCHEMA,
    build=build,
    key=("customer_id",),
    columns=COLUMNS,
    non_negative=("orders", "units"),
    tallies=(
        Tally("rows", "count(*)", "count(DISTINCT customer_id)"),
        Tally("orders", "sum(orders)", f"count(*) FILTER (WHERE {PLACED})"),
        Tally("units", "sum(units)", f"sum(quantity) FILTER (WHERE {PLACED})"),
        Tally("net_revenue", f"sum({' + '.join(NET_REVENUE)})", f"sum({SIGNED_AMOUNT})"),
    ),
    partitioned=False,
    combine=combine,
)
