"""product_performance: per product x event date."""

from typing import Any

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.zones.refined.model import AMOUNT, CURRENCIES, MONEY, PLACED, RefinedTable, Tally, amount

REVENUE = [f"revenue_{c.lower()}" for c in CURRENCIES]

SCHEMA = pa.schema(
    [
        ("event_date", pa.date32()),
        ("product_id", pa.string()),
        ("category", pa.string()),
        ("orders_placed", pa.int64()),
        ("orders_cancelled", pa.int64()),
        ("units", pa.int64()),
        *[(f"revenue_{c.lower()}", MONEY) for c in CURRENCIES],
        ("cancellation_rate", pa.float64()),
    ]
)


def build(engine: Engine, order_events: Frame, products: Frame) -> Frame:
    """Units and revenue placed per product and day (revenue per currency), and the cancellation rate.

    cancellation_rate = orders cancelled that day / orders placed that day (null when none were placed).
    """
    F = engine.F
    status = F.col("status")
    placed = status == F.lit("placed")
    value = amount(F)
    grouped = order_events.groupBy("event_date", "product_id").agg(
        F.countDistinct(F.when(placed, F.col("order_id"))).alias("orders_placed"),
        F.countDistinct(F.when(status == F.lit("cancelled"), F.col("order_id"))).alias("orders_cancelled"),
        F.coalesce(F.sum(F.when(placed, F.col("quantity"))), F.lit(0)).cast("bigint").alias("units"),
        *[
            F.coalesce(F.sum(F.when(placed & (F.col("currency") == F.lit(c)), value)), F.lit(0))
            .cast("decimal(18,2)")
            .alias(f"revenue_{c.lower()}")
            for c in CURRENCIES
        ],
    )
    return _with_master_data(engine, grouped, products)


def combine(engine: Engine, stored: Frame, partial: Frame, **master_data: Frame) -> Frame:
    """Folds the figures of a date's new events (`partial`, from `build`) into its stored rows: units and
    revenue are sums, the order counts distinct counts the refresh folds only when the new events repeat
    no order already counted that date with that status (`counted_once`); the rate is computed again, so
    the result equals a rebuild of the date. Both sides took the category from the same product data
    (a refresh folds only dates built with the current versions of the master data)."""
    F = engine.F
    columns = ["event_date", "product_id", "category", "orders_placed", "orders_cancelled", "units", *REVENUE]
    both = stored.select(*columns).union(partial.select(*columns))
    grouped = both.groupBy("event_date", "product_id").agg(
        F.max("category").alias("category"),
        *[F.sum(m).cast("bigint").alias(m) for m in columns[3:6]],
        *[F.sum(m).cast("decimal(18,2)").alias(m) for m in REVENUE],
    )
    return grouped.select(*columns, _rate(engine).alias("cancellation_rate"))


def _rate(engine: Engine) -> Any:
    """orders cancelled / orders placed, null when none were placed."""
    F = engine.F
    return F.when(F.col("orders_placed") > F.lit(0), F.col("orders_cancelled").cast("double") / F.col("orders_placed"))


def _with_master_data(engine: Engine, grouped: Frame, products: Frame) -> Frame:
    F = engine.F
    measures = [c for c in grouped.columns if c not in ("event_date", "product_id")]
    # one projection after the join (each DataFrame step costs a copy of the whole plan in SQLFrame)
    return grouped.join(products.select("product_id", "category"), on="product_id", how="left").select(
        "event_date",
        "product_id",
        F.coalesce(F.col("category"), F.lit("unknown")).alias("category"),
        *measures,
        _rate(engine).alias("cancellation_rate"),
    )


COLUMNS = {
    "event_date": "Day the events happened (UTC), the partition",
    "product_id": "Product ordered",
    "category": "Product's current ERP category (`unknown` if the ERP does not know the product yet)",
    "orders_placed": "Distinct orders placed that day",
    "orders_cancelled": "Distinct orders cancelled that day",
    "units": "Units placed",
    **{f"revenue_{c.lower()}": f"Sum of quantity x unit price of placed events in {c}" for c in CURRENCIES},
    "cancellation_rate": "orders_cancelled / orders_placed (null when none were placed)",
}

TABLE = RefinedTable(
    name="product_performance",
    description=(build.__doc__ or "product_performance").split("\n")[0],
    owner="team:commerce-data",
    inputs=("order_events", "products"),
    schema=SCHEMA,
    build=build,
    key=("event_date", "product_id"),
    columns=COLUMNS,
    non_negative=("orders_placed", "orders_cancelled", "units", *REVENUE, "cancellation_rate"),
    tallies=(
        Tally("rows", "count(*)", "count(DISTINCT (event_date, product_id))"),
        Tally("units", "sum(units)", f"sum(quantity) FILTER (WHERE {PLACED})"),
        Tally("revenue", f"sum({' + '.join(REVENUE)})", f"sum({AMOUNT}) FILTER (WHERE {PLACED})"),
    ),
    combine=combine,
    counted_once=("status", "order_id"),
)
